"""Retention windows as pure date functions: no database, no clock.

Each function returns the first day a record may be deleted (`deletable_on`); the record is kept
through the day before. They feed the purge, the admin's "deletion due" column, the dry-run
preview and the customer's own page, and are property-tested at month ends and leap days.

Periods come from `settings.RETENTION` (see `RetentionPeriods`), with the policy's defaults:
- customer data: 3 months after the relationship ended (privacy policy);
- invoices, payments and the agreements invoices refer to: 5 years after the end of the financial
  year (bokføringsloven § 13 first paragraph, primary documentation);
- server logs: 6 months from creation (privacy policy);
- access-request exports: 7 days after they are ready.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class RetentionPeriods:
    customer_data_months: int = 3
    accounting_years: int = 5
    server_log_months: int = 6
    export_days: int = 7
    # Staff access to customer data is documented for this long, then the audit events go.
    audit_months: int = 24
    # What the privacy policy promises for web analytics; the processor's own setting must match.
    analytics_months: int = 26
    # The last day of the financial year (month, day); the calendar year unless the company
    # has another financial year (regnskapsår), which the Accounting Act allows.
    fiscal_year_end: tuple[int, int] = (12, 31)

    def __post_init__(self) -> None:
        month, day = self.fiscal_year_end
        if (
            (month, day) == (2, 29)
            or not 1 <= month <= 12
            or not 1 <= day <= calendar.monthrange(2023, month)[1]
        ):
            raise ValueError(f"fiscal_year_end {self.fiscal_year_end} is not a day every year has")

    @classmethod
    def from_settings(cls) -> RetentionPeriods:
        from django.conf import settings

        return cls(**getattr(settings, "RETENTION", {}))


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def fiscal_year_end(day: date, *, periods: RetentionPeriods) -> date:
    """The last day of the financial year that `day` belongs to."""
    end_month, end_day = periods.fiscal_year_end
    end = date(day.year, end_month, min(end_day, calendar.monthrange(day.year, end_month)[1]))
    if day <= end:
        return end
    next_year = day.year + 1
    return date(next_year, end_month, min(end_day, calendar.monthrange(next_year, end_month)[1]))


def customer_data_deletable_on(relationship_ended_on: date, *, periods: RetentionPeriods) -> date:
    """Customer data is kept `customer_data_months` after the relationship's last day."""
    return add_months(relationship_ended_on, periods.customer_data_months) + ONE_DAY


def accounting_deletable_on(voucher_dates: list[date], *, periods: RetentionPeriods) -> date:
    """An accounting record is kept `accounting_years` after the end of the financial year of its
    latest voucher date (an invoice's issue date and the dates of payments against it).

    Issued in 2026 (calendar financial year, 5 years): kept to 31 Dec 2031, deletable 1 Jan 2032."""
    if not voucher_dates:
        raise ValueError("an accounting record has at least one voucher date")
    year_end = fiscal_year_end(max(voucher_dates), periods=periods)
    return add_months(year_end, 12 * periods.accounting_years) + ONE_DAY


def server_log_deletable_on(created: date, *, periods: RetentionPeriods) -> date:
    return add_months(created, periods.server_log_months) + ONE_DAY


def server_log_cutoff(today: date, *, periods: RetentionPeriods) -> date:
    """Objects created before this day are past their window on `today`."""
    return first_kept_day(lambda created: server_log_deletable_on(created, periods=periods), today=today)


def export_expires_at(ready_at: datetime, *, periods: RetentionPeriods) -> datetime:
    return ready_at + timedelta(days=periods.export_days)


# The longest stretch of `months` calendar months, in days: an S3 lifecycle rule counts days, so
# expiring after this many never deletes an object before its window in months has closed.
def longest_months_in_days(months: int) -> int:
    longest = 0
    for year in (2023, 2024):  # a common year and a leap year cover every case
        for month in range(1, 13):
            start = date(year, month, 1)
            for day in range(1, calendar.monthrange(year, month)[1] + 1):
                begin = start.replace(day=day)
                longest = max(longest, (add_months(begin, months) - begin).days)
    return longest + 1


def first_kept_day(deletable_on: Callable[[date], date], *, today: date, horizon_years: int = 30) -> date:
    """The earliest start day (voucher date, relationship end, creation day) whose record is still
    kept on `today`. Records dated before it are past their window: `day < first_kept_day(...)` ⇔
    `deletable_on(day) <= today`. `deletable_on` never decreases as the day grows, so a binary
    search over the horizon finds the boundary."""
    low, high = today - timedelta(days=366 * horizon_years), today + ONE_DAY
    if deletable_on(low) > today:
        return low
    while (high - low).days > 1:
        middle = low + timedelta(days=(high - low).days // 2)
        if deletable_on(middle) <= today:
            low = middle
        else:
            high = middle
    return high
