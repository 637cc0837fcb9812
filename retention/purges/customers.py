"""Purges of what the portal holds about customers: correspondence, contracts, invoices and the
customer account itself.

Order matters when they run the same night (`PURGES` in `retention.services`): correspondence
first (its processor copies must be deleted while the references are still here), then invoices
past their accounting period, then the customer account (with the contracts no invoice refers to),
which waits until the customer's correspondence is gone, then contracts left without a customer
whose invoices have gone. Invoices, their
payments and the contracts they refer to outlive the customer row (their customer becomes NULL) and
go when their own window closes.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format

from audit.models import UserSession
from customers.models import (
    Contract,
    Correspondence,
    Customer,
    CustomerQuerySet,
    Invoice,
    InvoiceLine,
    Payment,
)
from retention.models import PurgeRun
from retention.purges.base import AnyOf, BatchResult, Deletion, PreviewLine, Purge, Tonight, active_hold
from retention.purges.erasure import erasure_steps
from retention.windows import (
    RetentionPeriods,
    accounting_deletable_on,
    customer_data_deletable_on,
    first_kept_day,
)


def customer_data_cutoff(*, today: date, periods: RetentionPeriods) -> date:
    """Relationships that ended before this day are past the customer-data window on `today`."""
    return first_kept_day(lambda ended_on: customer_data_deletable_on(ended_on, periods=periods), today=today)


def accounting_cutoff(*, today: date, periods: RetentionPeriods) -> date:
    """Vouchers dated before this day are past the accounting period on `today`."""
    return first_kept_day(lambda voucher: accounting_deletable_on([voucher], periods=periods), today=today)


def subject(customer_id_field: str) -> Coalesce:
    """The customer a record outliving its customer row is about: `customer_id`, or once that is
    NULL, the `former_customer_id` the database kept (customers.models.keeps_former_customer)."""
    prefix = customer_id_field.removesuffix("customer_id")
    return Coalesce(F(customer_id_field), F(f"{prefix}former_customer_id"))


def among(field: str, ids: list[int]) -> AnyOf:
    """`field` is one of `ids` (a batch's ids as one array parameter; see AnyOf)."""
    return AnyOf(F(field), ids)


def due_customers(*, today: date, periods: RetentionPeriods) -> CustomerQuerySet:
    """Customers whose data is past its window on `today` and who are under no legal hold.

    The relationship's end is the latest contract end, an open contract counting as never ending
    (`customers.relationship.relationship_on`); a customer who never had a contract counts from
    the day the record was created. Written as one scalar subquery per customer (index
    contract_customer_end_idx) rather than `Customer.objects.with_relationship()`: PostgreSQL
    hashes the EXISTS inside that annotation's CASE, reading the whole contracts table for every
    batch, which made a purge of 100,000 customers quadratic (benchmarks/purge.py). The cutoff is
    never after today, so a relationship that ended before it is not active either."""
    cutoff = customer_data_cutoff(today=today, periods=periods)
    start_of_cutoff = timezone.make_aware(datetime.combine(cutoff, time.min))
    latest_end = (
        Contract.objects.filter(customer_id=OuterRef("pk"))
        .order_by()
        .values("customer_id")
        .annotate(latest=Max(Coalesce("ended_on", Value(date.max))))  # open: never ends
        .values("latest")
    )
    return (
        Customer.objects.alias(relationship_latest_end=Subquery(latest_end))
        .filter(
            Q(relationship_latest_end__lt=cutoff)
            | Q(relationship_latest_end__isnull=True, created_at__lt=start_of_cutoff)
        )
        .exclude(active_hold(customer_field="pk", today=today))
    )


def erasure_customers(*, customer_id: int, today: date) -> CustomerQuerySet:
    """The customer an erasure on request is for, unless a legal hold keeps her data: her window
    counts as closed now; holds, and the accounting period of her invoices, still apply."""
    return Customer.objects.filter(pk=customer_id).exclude(active_hold(customer_field="pk", today=today))


class CustomerBatchPurge(Purge):
    """Walks due customers in id order, one locked batch at a time; with `erasure_of`, only that
    customer, now (an erasure on request)."""

    def customers(self, *, today: date, tonight: Tonight | None = None) -> CustomerQuerySet:
        if self.erasure_of is not None:
            return erasure_customers(customer_id=self.erasure_of, today=today)
        return due_customers(today=today, periods=self.periods)

    def lines(self, counts: dict[str, int], *, today: date) -> list[PreviewLine]:
        reason = self.reason(today=today)
        return [PreviewLine(model, count, reason) for model, count in counts.items()]

    def lock_customers(self, *, today: date) -> list[int]:
        return self.lock_next_batch(self.customers(today=today))

    def cutoff(self, *, today: date) -> date | None:
        return customer_data_cutoff(today=today, periods=self.periods)

    def reason(self, *, today: date) -> str:
        cutoff = customer_data_cutoff(today=today, periods=self.periods)
        return (
            f"relationship ended before {date_format(cutoff, 'SHORT_DATE_FORMAT')} "
            f"+ {self.periods.customer_data_months} months"
        )


class CorrespondencePurge(CustomerBatchPurge):
    """The customers' correspondence; before it, with an erasure step on (the processors' connectors
    configured), their data at the processors (Zendesk tickets and end user, Google Analytics data
    for the ids they gave us), while their e-mail addresses are still here
    (retention.purges.erasure). A customer whose erasure is not done keeps her correspondence, and
    so her account, for the next run."""

    category = "correspondence"
    # First, at the processors and here; her export files next (access_requests.expiry), then
    # her account.
    erasure_step = 10

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # From settings alone: with no step on, no per-customer work at all.
        self.erasures = erasure_steps()

    def customers(self, *, today: date, tonight: Tonight | None = None) -> CustomerQuerySet:
        has_correspondence = Exists(Correspondence.objects.filter(customer_id=OuterRef("pk")))
        due = super().customers(today=today)
        if not self.erasures:
            return due.filter(has_correspondence)
        # A customer some step has not erased yet is due here too, correspondence or not.
        not_erased = Q()
        for erasure in self.erasures:
            not_erased |= ~erasure.erased()
        return due.filter(Q(has_correspondence) | not_erased)

    def rows(self, customer_ids: Any) -> QuerySet[Correspondence]:
        """The correspondence of these customers (a list of ids, or a query of them)."""
        return Correspondence.objects.filter(customer_id__in=customer_ids)

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        tonight = tonight or Tonight()
        customers = list(self.customers(today=today).values_list("pk", flat=True))
        steps = [Deletion(self.rows(customers), "customer_id")]
        lines = self.lines(self.count_steps(steps, tonight=tonight), today=today)
        # The customer-account purge, later tonight, takes those the processors erase now.
        tonight.erased_customers = customers
        for erasure in self.erasures:
            lines += erasure.preview_lines(
                customers=self.customers(today=today), reason=self.reason(today=today)
            )
        return lines

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        customer_ids = self.lock_customers(today=today)
        if not customer_ids:
            return None
        result = BatchResult()
        for erasure in self.erasures:
            # Only the customers every step has finished erasing lose their rows here now.
            customer_ids = erasure.erase_batch(purge=self, customer_ids=customer_ids, run=run, result=result)
        rows = Correspondence.objects.filter(among("customer_id", customer_ids))
        result.add(
            "customers.Correspondence", self.log_grouped(run=run, queryset=rows, customer_field="customer_id")
        )
        rows.delete()
        return result


class ContractPurge(Purge):
    """Contracts left without a customer that no invoice refers to any more.

    A customer's other contracts go with the customer account (CustomerAccountPurge): the
    relationship is derived from them, so they must stay until the customer goes. A contract an
    invoice refers to is primary documentation; it stays, without its customer, until the invoice
    has gone (the foreign key refuses anything else), and this purge removes it then."""

    category = "contracts"

    def due(self, *, today: date, tonight: Tonight | None = None) -> QuerySet[Contract]:
        """Contracts without a customer that no invoice refers to; for a preview, counting the
        customers and invoices that go earlier tonight as gone already."""
        tonight = tonight or Tonight.ran()
        orphans = Contract.objects.filter(
            Q(customer__isnull=True) | Q(customer__in=tonight.going_of(Customer))
        )
        referring = tonight.left(Invoice.objects.filter(contract_id=OuterRef("pk")))
        return tonight.left(orphans).exclude(Exists(referring))

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        tonight = tonight or Tonight()
        counts = self.count_steps(
            [Deletion(self.due(today=today, tonight=tonight), subject("customer_id"))], tonight=tonight
        )
        return [
            PreviewLine(model, count, "customer gone, no invoice refers to it")
            for model, count in counts.items()
        ]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        ids = self.lock_next_batch(self.due(today=today))
        if not ids:
            return None
        result = BatchResult()
        rows = Contract.objects.filter(among("pk", ids))
        result.add(
            "customers.Contract",
            self.log_grouped(run=run, queryset=rows, customer_field=subject("customer_id")),
        )
        rows.delete()
        return result


def invoice_refers_to_contract() -> Exists:
    return Exists(Invoice.objects.filter(contract_id=OuterRef("pk")))


class InvoicePurge(Purge):
    """Issued invoices (with their lines and payments) whose accounting period has ended.

    An invoice is kept until the period of its latest voucher (its issue date, or a later payment)
    has ended, and while a credit note that is still kept refers to it. Credit notes go first, so
    an invoice and the credit note that cancels it can go the same night."""

    category = "invoices"
    batch_size = 2000

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.kind = Invoice.Kind.CREDIT_NOTE

    def cutoff(self, *, today: date) -> date | None:
        return accounting_cutoff(today=today, periods=self.periods)

    def due(self, *, today: date) -> QuerySet[Invoice]:
        cutoff = accounting_cutoff(today=today, periods=self.periods)
        later_payment = Exists(Payment.objects.filter(invoice_id=OuterRef("pk"), paid_on__gte=cutoff))
        # `credited_invoice_id IS NOT NULL` says nothing new, but lets PostgreSQL's merge anti-join
        # skip the index's NULLs (every plain invoice) instead of reading all of them per batch.
        kept_credit_note = Exists(
            Invoice.objects.filter(
                credited_invoice_id=OuterRef("pk"), credited_invoice__isnull=False, issued_on__gte=cutoff
            )
        )
        return (
            Invoice.objects.filter(issued_on__lt=cutoff)
            .exclude(later_payment)
            .exclude(kept_credit_note)
            .exclude(active_hold(customer_field="customer_id", today=today))
        )

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        tonight = tonight or Tonight()
        cutoff = accounting_cutoff(today=today, periods=self.periods)
        reason = (
            f"vouchers dated before {date_format(cutoff, 'SHORT_DATE_FORMAT')}: "
            f"financial year ended + {self.periods.accounting_years} years (bokføringsloven § 13)"
        )
        # The run takes credit notes first, then invoices, from the same `due`: one set either way.
        counts = self.count_steps([Deletion(self.due(today=today), subject("customer_id"))], tonight=tonight)
        return [PreviewLine(model, count, reason) for model, count in counts.items()]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        while True:
            ids = self.lock_next_batch(self.due(today=today).filter(kind=self.kind))
            if ids:
                break
            if self.kind == Invoice.Kind.INVOICE:
                return None
            self.kind, self.after_id = Invoice.Kind.INVOICE, 0
        result = BatchResult()
        invoices = Invoice.objects.filter(among("pk", ids))
        for model, queryset, customer_field in (
            (
                "customers.InvoiceLine",
                InvoiceLine.objects.filter(among("invoice_id", ids)),
                subject("invoice__customer_id"),
            ),
            (
                "customers.Payment",
                Payment.objects.filter(among("invoice_id", ids)),
                subject("invoice__customer_id"),
            ),
            ("customers.Invoice", invoices, subject("customer_id")),
        ):
            result.add(model, self.log_grouped(run=run, queryset=queryset, customer_field=customer_field))
        invoices.delete()  # lines and payments follow by ON DELETE CASCADE
        return result


class CustomerAccountPurge(CustomerBatchPurge):
    """The customer record, contacts, draft invoices, contracts no invoice refers to, holds that
    have ended, and the customer's portal sign-in. Waits until the customer's correspondence is
    gone, and, with an erasure step on, until every step has erased her (see CorrespondencePurge)."""

    category = "customer_account"
    erasure_step = 30

    def customers(self, *, today: date, tonight: Tonight | None = None) -> CustomerQuerySet:
        tonight = tonight or Tonight.ran()
        # Correspondence that goes earlier tonight (a preview) no longer holds the customer back.
        remaining = tonight.left(Correspondence.objects.filter(customer_id=OuterRef("pk")))
        due = super().customers(today=today).exclude(Exists(remaining))
        for erasure in erasure_steps():
            erased = erasure.erased()
            if tonight.erased_customers is not None:  # a preview: the processors erase them tonight
                erased |= Q(pk__in=tonight.erased_customers)
            due = due.filter(erased)
        return due

    def steps(self, *, customers: list[int] | QuerySet[Any], tonight: Tonight) -> list[Deletion]:
        """What goes with these customers, in the order it is deleted; each step's cascades
        (contacts, holds, analytics ids, access requests, e-mail addresses, invoice lines) follow
        it. `customers` is the locked batch (ids) or, for a preview, every due customer."""

        def of_customers(field: str) -> Q | AnyOf:
            if isinstance(customers, list):
                return among(field, customers)
            return Q(**{f"{field}__in": customers})

        user_model = get_user_model()
        # Sign-ins of staff who are also customers stay; only customer-only accounts go: the
        # customer's own sign-in and those of contacts staff let into the portal.
        users = user_model.objects.filter(
            Q(customer__in=customers) | Q(contact__customer__in=customers), is_staff=False, is_superuser=False
        )
        user_subject = Coalesce(F("customer__pk"), F("contact__customer__pk"))
        sessions = Session.objects.filter(
            session_key__in=UserSession.objects.filter(user__in=users.values("pk")).values("session_id")
        )
        session_subject = Subquery(
            UserSession.objects.filter(session_id=OuterRef("pk"))
            .annotate(subject=Coalesce(F("user__customer__pk"), F("user__contact__customer__pk")))
            .values("subject")[:1]
        )
        drafts = Invoice.objects.filter(of_customers("customer_id"), issued_on__isnull=True)
        # Contracts no issued invoice refers to go with the customer (logged in their own
        # category); the others stay without a customer until their invoices have gone.
        kept_invoice = tonight.left(
            Invoice.objects.filter(contract_id=OuterRef("pk"), issued_on__isnull=False)
        )
        contracts = Contract.objects.filter(of_customers("customer_id")).exclude(Exists(kept_invoice))
        return [
            Deletion(tonight.left(sessions), session_subject, "sessions_and_audit"),
            Deletion(tonight.left(users), user_subject),
            Deletion(tonight.left(drafts), subject("customer_id"), "invoices"),
            Deletion(tonight.left(contracts), subject("customer_id"), "contracts"),
            Deletion(tonight.left(Customer.objects.filter(of_customers("pk"))), "pk"),
        ]

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        tonight = tonight or Tonight()
        customers = list(self.customers(today=today, tonight=tonight).values_list("pk", flat=True))
        counts = self.count_steps(self.steps(customers=customers, tonight=tonight), tonight=tonight)
        return self.lines(counts, today=today)

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        customer_ids = self.lock_customers(today=today)
        if not customer_ids:
            return None
        result = BatchResult()
        self.run_steps(self.steps(customers=customer_ids, tonight=Tonight.ran()), run=run, result=result)
        return result
