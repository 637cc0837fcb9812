"""`manage.py seed_demo`: load the demo data set and demo logins, once (see `customers.demo`)."""

from typing import Any

from django.core.management.base import BaseCommand

from customers.demo import demo_report_lines, demo_seed


class Command(BaseCommand):
    help = (
        "Create about 60 demo customers with contracts, invoices, payments and correspondence, "
        "and demo logins; does nothing when the demo set exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for line in demo_report_lines(report=demo_seed()):
            self.stdout.write(line)
