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
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format

from customers.models import (
    Contact,
    Contract,
    Correspondence,
    Customer,
    CustomerQuerySet,
    Invoice,
    InvoiceLine,
    Payment,
)
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.purges.base import AnyOf, BatchResult, PreviewLine, Purge
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


def among(field: str, ids: list[int]) -> AnyOf:
    """`field` is one of `ids` (a batch's ids as one array parameter; see AnyOf)."""
    return AnyOf(F(field), ids)


def active_hold(*, customer_field: str, today: date) -> Exists:
    return Exists(LegalHold.objects.active(today=today).filter(customer_id=OuterRef(customer_field)))


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


class CustomerBatchPurge(Purge):
    """Walks due customers in id order, one locked batch at a time."""

    def customers(self, *, today: date) -> CustomerQuerySet:
        return due_customers(today=today, periods=self.periods)

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

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # From settings alone: with no step on, no per-customer work at all.
        self.erasures = erasure_steps()

    def customers(self, *, today: date) -> CustomerQuerySet:
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

    def preview(self, *, today: date) -> list[PreviewLine]:
        count = self.rows(self.customers(today=today).values("pk")).count()
        lines = [PreviewLine("customers.Correspondence", count, self.reason(today=today))]
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

    def due(self, *, today: date) -> QuerySet[Contract]:
        return Contract.objects.filter(customer__isnull=True).exclude(invoice_refers_to_contract())

    def preview(self, *, today: date) -> list[PreviewLine]:
        return [
            PreviewLine(
                "customers.Contract", self.due(today=today).count(), "customer gone, no invoice refers to it"
            )
        ]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        ids = self.lock_next_batch(self.due(today=today))
        if not ids:
            return None
        result = BatchResult()
        rows = Contract.objects.filter(among("pk", ids))
        result.add(
            "customers.Contract", self.log_grouped(run=run, queryset=rows, customer_field="customer_id")
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

    def preview(self, *, today: date) -> list[PreviewLine]:
        due = self.due(today=today)
        cutoff = accounting_cutoff(today=today, periods=self.periods)
        reason = (
            f"vouchers dated before {date_format(cutoff, 'SHORT_DATE_FORMAT')}: "
            f"financial year ended + {self.periods.accounting_years} years (bokføringsloven § 13)"
        )
        return [
            PreviewLine("customers.Invoice", due.count(), reason),
            PreviewLine("customers.InvoiceLine", InvoiceLine.objects.filter(invoice__in=due).count(), reason),
            PreviewLine("customers.Payment", Payment.objects.filter(invoice__in=due).count(), reason),
        ]

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
                "invoice__customer_id",
            ),
            ("customers.Payment", Payment.objects.filter(among("invoice_id", ids)), "invoice__customer_id"),
            ("customers.Invoice", invoices, "customer_id"),
        ):
            result.add(model, self.log_grouped(run=run, queryset=queryset, customer_field=customer_field))
        invoices.delete()  # lines and payments follow by ON DELETE CASCADE
        return result


class CustomerAccountPurge(CustomerBatchPurge):
    """The customer record, contacts, draft invoices, contracts no invoice refers to, holds that
    have ended, and the customer's portal sign-in. Waits until the customer's correspondence is
    gone, and, with an erasure step on, until every step has erased her (see CorrespondencePurge)."""

    category = "customer_account"

    def customers(self, *, today: date) -> CustomerQuerySet:
        has_correspondence = Exists(Correspondence.objects.filter(customer_id=OuterRef("pk")))
        due = super().customers(today=today).exclude(has_correspondence)
        for erasure in erasure_steps():
            due = due.filter(erasure.erased())
        return due

    def preview(self, *, today: date) -> list[PreviewLine]:
        # The correspondence purge runs first the same night, so every due customer counts here,
        # also those whose correspondence is still waiting for it.
        due_customers_tonight = super().customers(today=today)
        due = due_customers_tonight.values("pk")
        reason = self.reason(today=today)
        return [
            PreviewLine("customers.Customer", due_customers_tonight.count(), reason),
            PreviewLine("customers.Contact", Contact.objects.filter(customer_id__in=due).count(), reason),
            PreviewLine(
                "customers.Invoice (drafts)",
                Invoice.objects.filter(customer_id__in=due, issued_on__isnull=True).count(),
                reason,
            ),
        ]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        customer_ids = self.lock_customers(today=today)
        if not customer_ids:
            return None
        result = BatchResult()
        user_model = get_user_model()
        # Sign-ins of staff who are also customers stay; only customer-only accounts go.
        # The customer's own sign-in and those of contacts staff let into the portal.
        users = user_model.objects.filter(
            Q(customer__in=customer_ids) | Q(contact__customer__in=customer_ids),
            is_staff=False,
            is_superuser=False,
        )
        user_ids = {
            user_id: own_customer or contact_customer
            for user_id, own_customer, contact_customer in users.values_list(
                "pk", "customer", "contact__customer"
            )
        }
        # Drafts are rare: find them first, and skip their queries when there are none.
        draft_ids = list(
            Invoice.objects.filter(among("customer_id", customer_ids), issued_on__isnull=True).values_list(
                "pk", flat=True
            )
        )
        drafts = Invoice.objects.filter(among("pk", draft_ids))
        # Contracts no issued invoice refers to go with the customer (logged in their own category);
        # the others stay without a customer until their invoices have gone.
        contracts = Contract.objects.filter(among("customer_id", customer_ids)).exclude(
            Exists(Invoice.objects.filter(contract_id=OuterRef("pk"), issued_on__isnull=False))
        )
        contract_ids = list(contracts.values_list("pk", flat=True))
        result.add(
            "customers.Contract",
            self.log_grouped(
                run=run,
                queryset=Contract.objects.filter(among("pk", contract_ids)),
                customer_field="customer_id",
                category="contracts",
            ),
        )
        to_log: list[tuple[str, QuerySet[Any], str]] = [
            ("customers.Contact", Contact.objects.filter(among("customer_id", customer_ids)), "customer_id"),
            (
                "retention.LegalHold",
                LegalHold.objects.filter(among("customer_id", customer_ids)),
                "customer_id",
            ),
            ("customers.Customer", Customer.objects.filter(among("pk", customer_ids)), "pk"),
        ]
        if draft_ids:
            lines = InvoiceLine.objects.filter(among("invoice_id", draft_ids))
            to_log += [
                ("customers.InvoiceLine", lines, "invoice__customer_id"),
                ("customers.Invoice", drafts, "customer_id"),
            ]
        else:
            result.add("customers.InvoiceLine", 0)
            result.add("customers.Invoice", 0)
        for model, queryset, customer_field in to_log:
            result.add(model, self.log_grouped(run=run, queryset=queryset, customer_field=customer_field))
        DeletionLog.objects.bulk_create(
            self.log_entry(
                run=run, model=user_model._meta.label, customer_id=customer_id, ids=[user_id], count=1
            )
            for user_id, customer_id in user_ids.items()
        )
        if draft_ids:
            drafts.delete()
        if contract_ids:
            Contract.objects.filter(among("pk", contract_ids)).delete()
        Customer.objects.filter(among("pk", customer_ids)).delete()
        if user_ids:
            user_model.objects.filter(pk__in=list(user_ids)).delete()
            result.add(user_model._meta.label, len(user_ids))
        return result
