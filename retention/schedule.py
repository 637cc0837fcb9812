"""One customer's deletion schedule: when each category of their data goes, and why.

Pure functions over facts (no database, no clock), so the admin's "deletion due" column, the purge
preview, the retention report and the customer's own page all say the same thing. The facts come
from `retention.selectors.customers_with_deletion_facts`, which loads them for many customers at once.

Invariants (they mirror what the purges in `retention.purges.customers` do):
- Customer account data, contracts and correspondence go `customer_data_months` after the
  relationship ended; a customer who never had a contract counts from the day the record was
  created (as `due_customers` does). While the relationship is active nothing is scheduled.
- Invoices and payments go when the accounting period of the latest voucher has ended
  (`accounting_deletable_on`); the agreements they refer to stay with them.
- An active legal hold stops everything: every item is unscheduled and names the hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.relationship import Relationship, RelationshipStatus
from retention.windows import ONE_DAY, RetentionPeriods, accounting_deletable_on, customer_data_deletable_on

# The categories of the data map whose window counts from the end of the customer relationship.
CUSTOMER_DATA_CATEGORIES = ("customer_account", "contracts", "correspondence")
INVOICE_CATEGORY = "invoices"


@dataclass(frozen=True)
class ScheduledDeletion:
    """When one category of a customer's data may be deleted (None: not scheduled), and why."""

    category_key: str
    deletable_on: date | None
    reason: str

    @property
    def kept_until(self) -> date | None:
        """The last day the data is kept."""
        return self.deletable_on - ONE_DAY if self.deletable_on is not None else None


def _day(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def _months(months: int) -> str:
    return ngettext("%(months)d month", "%(months)d months", months) % {"months": months}


def customer_data_schedule(
    *, relationship: Relationship, created_on: date, periods: RetentionPeriods
) -> tuple[date | None, str]:
    """When the customer-data categories may go, and the reason in words."""
    if relationship.status == RelationshipStatus.ACTIVE:
        return None, _("kept while the customer relationship is active")
    if relationship.status == RelationshipStatus.ENDED and relationship.ended_on is not None:
        deletable_on = customer_data_deletable_on(relationship.ended_on, periods=periods)
        return deletable_on, _(
            "kept until %(kept_until)s, %(period)s after the relationship ended %(ended)s"
        ) % {
            "kept_until": _day(deletable_on - ONE_DAY),
            "period": _months(periods.customer_data_months),
            "ended": _day(relationship.ended_on),
        }
    # No contract: nothing ever started a relationship, so the record's own age counts.
    deletable_on = customer_data_deletable_on(created_on, periods=periods)
    reason = _("kept until %(kept_until)s, %(period)s after the customer was registered %(created)s")
    return deletable_on, reason % {
        "kept_until": _day(deletable_on - ONE_DAY),
        "period": _months(periods.customer_data_months),
        "created": _day(created_on),
    }


def invoices_reason(deletable_on: date) -> str:
    return _("invoices held until %(kept_until)s, bokføringsloven § 13") % {
        "kept_until": _day(deletable_on - ONE_DAY)
    }


def legal_hold_reason(hold_ends_on: date | None) -> str:
    if hold_ends_on is None:
        return _("on legal hold until it is released")
    return _("on legal hold until %(ends_on)s") % {"ends_on": _day(hold_ends_on)}


def deletion_schedule(
    *,
    relationship: Relationship,
    created_on: date,
    latest_voucher_on: date | None,
    on_hold: bool = False,
    hold_ends_on: date | None = None,
    periods: RetentionPeriods | None = None,
) -> list[ScheduledDeletion]:
    """The customer's deletion schedule, one item per data category that holds their data.

    `latest_voucher_on` is the latest issue date of their issued invoices and payment date of
    their payments (None: no issued invoice, and no invoices item). `hold_ends_on` is the last day
    of the longest active hold (None while `on_hold`: until released)."""
    periods = periods or RetentionPeriods.from_settings()
    categories = [*CUSTOMER_DATA_CATEGORIES]
    if latest_voucher_on is not None:
        categories.append(INVOICE_CATEGORY)
    if on_hold:
        reason = legal_hold_reason(hold_ends_on)
        return [ScheduledDeletion(key, None, reason) for key in categories]

    customer_data_on, customer_data_reason = customer_data_schedule(
        relationship=relationship, created_on=created_on, periods=periods
    )
    schedule = []
    for key in CUSTOMER_DATA_CATEGORIES:
        reason = customer_data_reason
        if key == "contracts" and latest_voucher_on is not None:
            reason = _("%(reason)s; an agreement an invoice refers to is kept as long as the invoice") % {
                "reason": reason
            }
        schedule.append(ScheduledDeletion(key, customer_data_on, reason))
    if latest_voucher_on is not None:
        invoices_on = accounting_deletable_on([latest_voucher_on], periods=periods)
        schedule.append(ScheduledDeletion(INVOICE_CATEGORY, invoices_on, invoices_reason(invoices_on)))
    return schedule


def scheduled(schedule: list[ScheduledDeletion], category_key: str) -> ScheduledDeletion | None:
    """The item of `schedule` for one category, if the customer has data in it."""
    return next((item for item in schedule if item.category_key == category_key), None)
