"""Upcoming deletions per data category and month: `manage.py retention_report --months 12`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from retention.selectors import UpcomingDeletions, upcoming_deletions


def format_table(report: UpcomingDeletions) -> list[str]:
    header = ["", *(f"{month:%Y-%m}" for month in report.months), "total"]
    body = [
        [f"{row.name} ({row.unit})", *(str(count) for count in row.counts), str(row.total)]
        for row in report.rows
    ]
    widths = [max(len(line[column]) for line in [header, *body]) for column in range(len(header))]
    return [
        "  ".join(
            cell.ljust(widths[0]) if column == 0 else cell.rjust(widths[column])
            for column, cell in enumerate(line)
        )
        for line in [header, *body]
    ]


class Command(BaseCommand):
    help = "Show how many customers, invoices and audit events the purges delete in each coming month."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--months", type=int, default=12, help="How many months ahead (default 12).")

    def handle(self, *args: Any, months: int, **options: Any) -> None:
        if months < 1:
            raise CommandError("--months must be at least 1")
        report = upcoming_deletions(months=months)
        self.stdout.write(
            f"Upcoming deletions from {report.today:%Y-%m-%d} (overdue items count in the first month; "
            "customers under a legal hold are not counted)"
        )
        for line in format_table(report):
            self.stdout.write(line)
