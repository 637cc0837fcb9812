"""Reads for retention: each customer's deletion facts and schedule, who is due when, what a purge
would take, and what is coming in the next months.

The facts are loaded as SQL annotations (one query for any number of customers); the schedule
itself is the pure `retention.schedule.deletion_schedule`, so every page says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from customers.models import Correspondence, Customer, CustomerQuerySet, Invoice, Payment
from customers.relationship import Relationship, RelationshipStatus
from retention.data_map import category as data_category
from retention.models import LegalHold
from retention.purges.audit import SessionAndAuditPurge
from retention.purges.customers import (
    CustomerBatchPurge,
    accounting_cutoff,
    active_hold,
    customer_data_cutoff,
)
from retention.schedule import (
    CUSTOMER_DATA_CATEGORIES,
    ScheduledDeletion,
    deletion_schedule,
    scheduled,
)
from retention.services import PURGES
from retention.windows import RetentionPeriods, accounting_deletable_on, add_months

# The annotations `customers_with_deletion_facts` adds (with `relationship_status` and
# `relationship_ended_on` from `CustomerQuerySet.with_relationship`).
FACTS = ("latest_invoice_on", "latest_payment_on", "legal_hold_active", "legal_hold_ends_on")


def customers_with_deletion_facts(
    *, queryset: QuerySet[Customer] | None = None, today: date | None = None
) -> CustomerQuerySet:
    """Annotate each customer with what their deletion schedule depends on, as correlated
    subqueries (no query per row): the relationship, the latest issued invoice's date (index
    invoice_customer_issued_idx), the latest payment's date, and whether an active legal hold
    stops deletion and until when (`legal_hold_ends_on` NULL while active: until released)."""
    today = today or timezone.localdate()
    customers = queryset if queryset is not None else Customer.objects.all()
    assert isinstance(customers, CustomerQuerySet)
    if all(name in customers.query.annotations for name in FACTS):
        return customers  # already loaded (the admin's queryset, filtered again by a list filter)
    if "relationship_status" not in customers.query.annotations:
        customers = customers.with_relationship(today=today)
    issued = Invoice.objects.filter(customer_id=OuterRef("pk"), issued_on__isnull=False)
    payments = Payment.objects.filter(invoice__customer_id=OuterRef("pk"))
    holds = LegalHold.objects.active(today=today).filter(customer_id=OuterRef("pk"))
    return customers.annotate(
        latest_invoice_on=Subquery(issued.order_by("-issued_on").values("issued_on")[:1]),
        latest_payment_on=Subquery(payments.order_by("-paid_on").values("paid_on")[:1]),
        legal_hold_active=Exists(holds),
        # The hold that lasts longest decides: an open-ended one (NULL) first.
        legal_hold_ends_on=Subquery(
            holds.order_by(F("ends_on").desc(nulls_first=True)).values("ends_on")[:1]
        ),
    )


def deletion_schedule_of(
    *, customer: Customer, periods: RetentionPeriods | None = None
) -> list[ScheduledDeletion]:
    """The schedule of a customer loaded through `customers_with_deletion_facts` (no query)."""
    facts = vars(customer)
    missing = [name for name in ("relationship_status", "relationship_ended_on", *FACTS) if name not in facts]
    if missing:
        raise ValueError(
            f"customer {customer.pk} lacks {', '.join(missing)}: "
            "load it through customers_with_deletion_facts()"
        )
    vouchers = [day for day in (facts["latest_invoice_on"], facts["latest_payment_on"]) if day is not None]
    return deletion_schedule(
        relationship=Relationship(
            RelationshipStatus(facts["relationship_status"]), facts["relationship_ended_on"]
        ),
        created_on=timezone.localdate(customer.created_at),
        latest_voucher_on=max(vouchers, default=None),
        on_hold=facts["legal_hold_active"],
        hold_ends_on=facts["legal_hold_ends_on"],
        periods=periods,
    )


def customer_deletion_schedule(*, customer: Customer, today: date | None = None) -> list[ScheduledDeletion]:
    """One customer's deletion schedule, in one query."""
    loaded = customers_with_deletion_facts(
        queryset=Customer.objects.filter(pk=customer.pk), today=today
    ).get()
    return deletion_schedule_of(customer=loaded)


def customer_data_due(*, on: date, periods: RetentionPeriods) -> Q:
    """Customers (annotated with their relationship) whose customer data is past its window on
    `on`: the condition of `retention.purges.customers.due_customers`, holds aside."""
    cutoff = customer_data_cutoff(today=on, periods=periods)
    start_of_cutoff = timezone.make_aware(datetime.combine(cutoff, time.min))
    return Q(relationship_status=RelationshipStatus.ENDED.value, relationship_ended_on__lt=cutoff) | Q(
        relationship_status=RelationshipStatus.NO_CONTRACT.value, created_at__lt=start_of_cutoff
    )


class DeletionDue(models.TextChoices):
    """When a customer's data goes, as staff filter for it. A legal hold takes precedence: a held
    customer is only ever "on legal hold"."""

    OVERDUE = "overdue", _("Overdue")
    WITHIN_30_DAYS = "30d", _("Within 30 days")
    WITHIN_3_MONTHS = "3m", _("Within 3 months")
    NOT_SCHEDULED = "active", _("Not scheduled (active)")
    ON_HOLD = "hold", _("On legal hold")


def customers_by_deletion_due(
    *, queryset: QuerySet[Customer], due: DeletionDue, today: date | None = None
) -> CustomerQuerySet:
    """Filter in SQL by when the customer data goes; "within" counts from tomorrow on, so an
    overdue customer is only overdue. The bounds come from the same cutoffs as the purge."""
    today = today or timezone.localdate()
    periods = RetentionPeriods.from_settings()
    customers = customers_with_deletion_facts(queryset=queryset, today=today)
    if due == DeletionDue.ON_HOLD:
        return customers.filter(Q(legal_hold_active=True))
    # Q objects: the annotations are invisible to the type checker's field lookups.
    customers = customers.filter(Q(legal_hold_active=False))
    if due == DeletionDue.NOT_SCHEDULED:
        return customers.filter(Q(relationship_status=RelationshipStatus.ACTIVE.value))
    due_today = customer_data_due(on=today, periods=periods)
    if due == DeletionDue.OVERDUE:
        return customers.filter(due_today)
    horizon = today + timedelta(days=30) if due == DeletionDue.WITHIN_30_DAYS else add_months(today, 3)
    return customers.filter(customer_data_due(on=horizon, periods=periods)).exclude(due_today)


@dataclass(frozen=True)
class DueCustomer:
    """A customer a purge takes on a given day, for staff to check before it happens."""

    pk: int
    name: str
    relationship_ended_on: date | None
    deletable_on: date | None
    reason: str


def due_customers_preview(*, category: str, as_of: date, limit: int = 25) -> list[DueCustomer]:
    """The first `limit` customers whose data the purge of `category` takes on `as_of` (oldest
    relationship end first); empty for categories that are not purged customer by customer."""
    purge_class = PURGES.get(category)
    if purge_class is None or not issubclass(purge_class, CustomerBatchPurge):
        return []
    purge = purge_class()
    customers = customers_with_deletion_facts(queryset=purge.customers(today=as_of), today=as_of)
    customers = customers.order_by(F("relationship_ended_on").asc(nulls_last=True), "created_at", "pk")
    due = []
    for customer in customers[:limit]:
        item = scheduled(deletion_schedule_of(customer=customer, periods=purge.periods), category)
        due.append(
            DueCustomer(
                pk=customer.pk,
                name=customer.name,
                relationship_ended_on=vars(customer)["relationship_ended_on"],
                deletable_on=item.deletable_on if item else None,
                reason=item.reason if item else "",
            )
        )
    return due


@dataclass(frozen=True)
class UpcomingRow:
    category_key: str
    name: str
    unit: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class UpcomingDeletions:
    """What the purges take in each of the coming months. `months` are first days of months,
    from the current one; what is already overdue counts in the current month, as the next run
    takes it."""

    today: date
    months: list[date]
    rows: list[UpcomingRow]


def _month_index(day: date, *, first_month: date) -> int:
    return max(0, (day.year - first_month.year) * 12 + day.month - first_month.month)


def upcoming_deletions(*, months: int = 12, today: date | None = None) -> UpcomingDeletions:
    """Upcoming deletions per category and month: customers (from their deletion schedules),
    invoices (by their own accounting period) and audit events (by age). Customers and invoices
    under an active legal hold are not scheduled and not counted."""
    if months < 1:
        raise ValueError("months must be at least 1")
    today = today or timezone.localdate()
    periods = RetentionPeriods.from_settings()
    first_month = today.replace(day=1)
    month_starts = [add_months(first_month, index) for index in range(months)]
    last_day = add_months(first_month, months) - timedelta(days=1)

    rows = [
        *_upcoming_customer_rows(today=today, last_day=last_day, first_month=first_month, months=months,
                                 periods=periods),
        _upcoming_invoices(today=today, last_day=last_day, first_month=first_month, months=months,
                           periods=periods),
        _upcoming_audit_events(month_starts=month_starts, periods=periods),
    ]  # fmt: skip
    return UpcomingDeletions(today=today, months=month_starts, rows=rows)


def _upcoming_customer_rows(
    *, today: date, last_day: date, first_month: date, months: int, periods: RetentionPeriods
) -> list[UpcomingRow]:
    counts = {key: [0] * months for key in CUSTOMER_DATA_CATEGORIES}
    customers = (
        customers_with_deletion_facts(queryset=Customer.objects.all(), today=today)
        .filter(customer_data_due(on=last_day, periods=periods), Q(legal_hold_active=False))
        .annotate(has_correspondence=Exists(Correspondence.objects.filter(customer_id=OuterRef("pk"))))
        .only("pk", "created_at")
        .order_by()
    )
    for customer in customers.iterator(chunk_size=2000):
        has_data = {
            "customer_account": True,
            "contracts": vars(customer)["relationship_status"] == RelationshipStatus.ENDED.value,
            "correspondence": vars(customer)["has_correspondence"],
        }
        for item in deletion_schedule_of(customer=customer, periods=periods):
            if item.category_key in counts and item.deletable_on is not None and has_data[item.category_key]:
                index = _month_index(item.deletable_on, first_month=first_month)
                if index < months:
                    counts[item.category_key][index] += 1
    unit = str(_("customers"))
    return [
        UpcomingRow(key, str(data_category(key).name), unit, counts[key]) for key in CUSTOMER_DATA_CATEGORIES
    ]


def _upcoming_invoices(
    *, today: date, last_day: date, first_month: date, months: int, periods: RetentionPeriods
) -> UpcomingRow:
    """Each issued invoice goes when the period of its latest voucher ends: its own issue date, a
    later payment, or a credit note that refers to it (the purge keeps it while that is kept)."""
    counts = [0] * months
    candidates = (
        # Only an invoice issued before this day can be due by `last_day`; later vouchers can
        # only move it further out, which the loop checks.
        Invoice.objects.filter(issued_on__lt=accounting_cutoff(today=last_day, periods=periods))
        .exclude(active_hold(customer_field="customer_id", today=today))
        .annotate(
            latest_payment_on=Subquery(
                Payment.objects.filter(invoice_id=OuterRef("pk")).order_by("-paid_on").values("paid_on")[:1]
            ),
            latest_credit_note_on=Subquery(
                Invoice.objects.filter(credited_invoice_id=OuterRef("pk"), issued_on__isnull=False)
                .order_by("-issued_on")
                .values("issued_on")[:1]
            ),
        )
        .order_by()
        .values_list("issued_on", "latest_payment_on", "latest_credit_note_on")
    )
    for vouchers in candidates.iterator(chunk_size=5000):
        deletable_on = accounting_deletable_on([day for day in vouchers if day is not None], periods=periods)
        index = _month_index(deletable_on, first_month=first_month)
        if index < months:
            counts[index] += 1
    return UpcomingRow("invoices", str(data_category("invoices").name), str(_("invoices")), counts)


def _upcoming_audit_events(*, month_starts: list[date], periods: RetentionPeriods) -> UpcomingRow:
    """Audit events go by age; one aggregate query counts each month's share."""
    cutoff = SessionAndAuditPurge(periods=periods).audit_cutoff
    # Events created before bounds[i] are past their window by the last day of month i.
    bounds = [cutoff(today=add_months(start, 1) - timedelta(days=1)) for start in month_starts]
    filters = {}
    for index, upper in enumerate(bounds):
        # The current month also takes everything already past its window.
        window = (
            Q(created_at__lt=upper)
            if index == 0
            else Q(created_at__gte=bounds[index - 1], created_at__lt=upper)
        )
        filters[f"month_{index}"] = Count("pk", filter=window)
    totals = AuditEvent.objects.aggregate(**filters)
    counts = [totals[f"month_{index}"] for index in range(len(month_starts))]
    return UpcomingRow(
        "sessions_and_audit", str(data_category("sessions_and_audit").name), str(_("audit events")), counts
    )
