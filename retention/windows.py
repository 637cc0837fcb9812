"""Retention windows as pure date functions: no database, no clock.

Each function returns the first day a record may be deleted (`deletable_on`); the record is kept
through the day before. They feed the purge, the admin's "deletion due" column, the dry-run
preview and the customer's own page, and are property-tested at month ends and leap days.

Periods come from `settings.RETENTION`, a validated `RetentionPeriods` parsed from the `RETENTION_*`
environment variables, with the policy's defaults:
- customer data: 3 months after the relationship ended (privacy policy);
- invoices, payments and the agreements invoices refer to: 5 years after the end of the financial
  year (bokføringsloven § 13 first paragraph, primary documentation);
- server logs: 6 months from creation (privacy policy);
- access-request exports: 7 days after they are ready.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured

ONE_DAY = timedelta(days=1)


class RetentionPeriodError(ImproperlyConfigured, ValueError):
    """A retention period the law or the policy forbids, naming its environment variable."""


@dataclass(frozen=True)
class Bound:
    """The range a period may take, and why its floor is where it is."""

    lowest: int
    highest: int
    unit: str
    floor_reason: str = ""


# The allowed range of each period. Floors: the Accounting Act's five years for primary
# documentation (bokføringsloven § 13) can be raised, never lowered; everything else is kept at
# least one unit (a period of 0 or less would delete what is still in use). Ceilings only catch
# typos (a period of 100,000 months): a longer period than the policy's default is allowed, and the
# privacy page, the customer's page and the export show the configured number, since they render
# from this same object (they never state a period of their own).
BOUNDS: dict[str, Bound] = {
    "customer_data_months": Bound(1, 120, "months", "customer data is kept at least a month"),
    "accounting_years": Bound(5, 20, "years", "bokføringsloven § 13: primary documentation 5 years"),
    "server_log_months": Bound(1, 60, "months"),
    "export_days": Bound(1, 30, "days"),
    "audit_months": Bound(1, 120, "months"),
    "analytics_months": Bound(1, 50, "months"),
}
ENV_PREFIX = "RETENTION_"


@dataclass(frozen=True)
class RetentionPeriods:
    """Every retention period, validated: constructing one with a value the law or the policy
    forbids raises `RetentionPeriodError` naming the variable and the allowed range. Settings parse
    the environment into one (`from_environ`); the purges, pages and the database's triggers read it."""

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
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise RetentionPeriodError(
                    f"{self.variable(name)}={value!r} is not a whole number of {bound.unit}"
                )
            if not bound.lowest <= value <= bound.highest:
                why = f" ({bound.floor_reason})" if bound.floor_reason else ""
                raise RetentionPeriodError(
                    f"{self.variable(name)}={value} is outside the allowed {bound.lowest}–{bound.highest} "
                    f"{bound.unit}{why}"
                )
        month, day = self.fiscal_year_end
        if (
            (month, day) == (2, 29)
            or not 1 <= month <= 12
            or not 1 <= day <= calendar.monthrange(2023, month)[1]
        ):
            raise RetentionPeriodError(
                f"{self.variable('fiscal_year_end')}={month:02d}-{day:02d} is not a day every year has "
                "(MM-DD, 29 February excluded)"
            )

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable that sets the period `name`."""
        return f"{ENV_PREFIX}{name.upper()}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RetentionPeriods:
        """Parse `RETENTION_*` variables (unset or empty: the default). Whole numbers for the
        periods, `MM-DD` for the financial year's last day."""
        values: dict[str, Any] = {}
        for period in fields(cls):
            raw = (environ.get(cls.variable(period.name)) or "").strip()
            if not raw:
                continue
            if period.name == "fiscal_year_end":
                match = re.fullmatch(r"(\d{2})-(\d{2})", raw)
                if match is None:
                    raise RetentionPeriodError(
                        f"{cls.variable(period.name)}={raw!r} is not a day as MM-DD, e.g. 12-31"
                    )
                values[period.name] = (int(match[1]), int(match[2]))
            elif re.fullmatch(r"[+-]?\d+", raw):
                values[period.name] = int(raw)
            else:
                bound = BOUNDS[period.name]
                raise RetentionPeriodError(
                    f"{cls.variable(period.name)}={raw!r} is not a whole number of {bound.unit} "
                    f"({bound.lowest}–{bound.highest})"
                )
        return cls(**values)

    @classmethod
    def from_settings(cls) -> RetentionPeriods:
        """The validated periods in `settings.RETENTION` (parsed from the environment at start-up;
        a dict of overrides, as tests set it, is validated here)."""
        from django.conf import settings

        configured = getattr(settings, "RETENTION", None)
        if isinstance(configured, cls):
            return configured
        return cls(**(configured or {}))


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
