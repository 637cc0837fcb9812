"""Run the retention purges by hand, or preview them: `manage.py purge --dry-run --as-of 2027-01-01`.

Exit status: 0 ran, 1 a purge failed, 2 bad arguments (one line), 3 skipped: another run holds the lock.

The same services the scheduler calls; this only parses options and prints what they return.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from retention import services
from retention.models import PurgeRun

# Exit statuses: 0 it ran (or previewed); 1 a purge failed; 2 bad arguments; 3 skipped because
# another run holds the lock (it did not look: nothing is known about what was due).
EXIT_BAD_ARGUMENTS = 2
EXIT_LOCK_HELD = 3
# A day a purge can sensibly be computed for: the portal's records start after the first and a
# dry run looks ahead at most this far (date arithmetic near year 1 or 9999 overflows).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str | None) -> date | None:
    """`YYYY-MM-DD` only (not the other forms `date.fromisoformat` takes), within a sane range."""
    if value is None:
        return None
    try:
        if not ISO_DAY.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--as-of {value!r} is not a date: use YYYY-MM-DD", returncode=EXIT_BAD_ARGUMENTS
        ) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise CommandError(
            f"--as-of {value} is outside {EARLIEST_DAY:%Y-%m-%d}–{LATEST_DAY:%Y-%m-%d}: use YYYY-MM-DD "
            "within it",
            returncode=EXIT_BAD_ARGUMENTS,
        )
    return day


class Command(BaseCommand):
    help = "Delete what is past its retention window (or, with --dry-run, show what would go)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Show what would go; delete nothing.")
        parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="Compute eligibility for this day.")
        parser.add_argument("--category", help="One data category (default: all, in purge order).")

    def handle(
        self, *args: Any, dry_run: bool, as_of: str | None, category: str | None, **options: Any
    ) -> None:
        day = parse_day(as_of)
        if category is not None and category not in services.PURGES:
            raise CommandError(
                f"unknown category {category!r}; choose from {', '.join(services.PURGES)}",
                returncode=EXIT_BAD_ARGUMENTS,
            )
        # One category at a time, in `purge_all`'s order, so each result prints as it finishes
        # and a failure names its category.
        categories = [category] if category else list(services.PURGES)
        failed, skipped = [], []
        for key in categories:
            try:
                if dry_run:
                    self.print_preview(key, services.purge_preview(category=key, as_of=day))
                    continue
                run = services.purge_run(category=key, as_of=day)
            except services.PurgeRefused as refusal:
                raise CommandError(str(refusal), returncode=EXIT_BAD_ARGUMENTS) from refusal
            except Exception as error:  # purge_run has recorded the FAILED run; say so, then stop
                raise CommandError(f"{key}: purge failed: {type(error).__name__}: {error}") from error
            self.print_run(run)
            if run.status == PurgeRun.Status.FAILED:
                failed.append(key)
            elif run.status == PurgeRun.Status.SKIPPED:
                skipped.append(key)
        if failed:
            raise CommandError(f"purge failed for {', '.join(failed)}")
        if skipped:
            raise CommandError(
                f"skipped {', '.join(skipped)}: another run holds the lock; nothing was looked at",
                returncode=EXIT_LOCK_HELD,
            )

    def print_preview(self, category: str, lines: list[Any]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(category))
        for line in lines:
            self.stdout.write(f"  {line.model}: {line.count} ({line.reason})")
        self.stdout.write("  nothing deleted (dry run)")

    def print_run(self, run: PurgeRun) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"{run.category}: {run.get_status_display()}"))
        if run.status == PurgeRun.Status.SKIPPED:
            return
        deleted = sorted((model, count) for model, count in run.counts.items() if count)
        for model, count in deleted:
            self.stdout.write(f"  {model}: {count} deleted")
        if not deleted:
            self.stdout.write("  nothing was due")
        batches = "1 batch" if run.batches == 1 else f"{run.batches} batches"
        self.stdout.write(f"  {batches}, longest {run.longest_batch_seconds:.2f} s")
        for error in run.errors:
            self.stdout.write(self.style.ERROR(f"  error: {error}"))
