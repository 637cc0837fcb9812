"""`manage.py create_staff`: a staff account in a group, which sets up two-factor authentication at
its first sign-in (see `portal.staff`)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.staff import StaffRefused, staff_create


class Command(BaseCommand):
    help = (
        "Create a staff account in one or more groups (Support, Billing, Privacy officer, ...). "
        "It sets up an authenticator app at its first sign-in, before the admin opens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--group", action="append", default=[], dest="groups", help="a staff group; repeat for more"
        )
        parser.add_argument("--superuser", action="store_true", help="every permission (the first employee)")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input instead of asking for it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = self._password(from_stdin=options["password_stdin"])
        try:
            user = staff_create(
                username=options["username"],
                email=options["email"],
                password=password,
                group_names=options["groups"],
                superuser=options["superuser"],
            )
        except StaffRefused as refused:
            raise CommandError(str(refused)) from None
        groups = ", ".join(user.groups.order_by("name").values_list("name", flat=True)) or "no group"
        self.stdout.write(
            f"Created staff user {user.username} ({groups}{', superuser' if user.is_superuser else ''})."
        )
        self.stdout.write(
            f"Next: sign in at {settings.PORTAL_BASE_URL}/admin/ with {user.email}; the portal then asks "
            "to set up an authenticator app (two-factor authentication) before any admin page opens."
        )

    def _password(self, *, from_stdin: bool) -> str:
        if from_stdin:
            return sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask for the password on: pass --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("the two passwords differ")
        return password
