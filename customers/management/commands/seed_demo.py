"""`manage.py seed_demo`: load the demo data set and demo logins, once (see `customers.demo`).

Development only: it creates a superuser whose password it prints, so it refuses to run with DEBUG
off (a production database, or the container stack). `customers.demo` is imported only after that
check: Faker is in the `demo` dependency group, which the production image does not install.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create about 60 demo customers with contracts, invoices, payments and correspondence, "
        "and demo logins; does nothing when the demo set exists. Refuses to run with DEBUG off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-debug",
            action="store_true",
            help="With DEBUG off, say so and load nothing instead of failing (`make run` uses it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            message = (
                "seed_demo loads demo data and a superuser with a printed password, so it runs only "
                "with DEBUG on (a development checkout). To create the first staff user, run "
                "`manage.py create_staff`."
            )
            if options["if_debug"]:
                self.stdout.write("DEBUG is off: no demo data loaded.")
                return
            raise CommandError(message)
        from customers.demo import demo_report_lines, demo_seed

        for line in demo_report_lines(report=demo_seed()):
            self.stdout.write(line)
