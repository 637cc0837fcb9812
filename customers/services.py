"""Writes to customer and invoicing records, with their business rules."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import (
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    invoice_locked_error,
)
from customers.money import invoice_totals

DEFAULT_PAYMENT_TERMS_DAYS = 14


def _next_invoice_number() -> int:
    # The single sequence row is locked until the issuing transaction commits, so two invoices
    # issued at once get consecutive numbers and a rolled-back issue leaves no gap.
    sequence, _created = InvoiceSequence.objects.select_for_update().get_or_create(pk=1)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return sequence.last_number


@transaction.atomic
def invoice_issue(
    *, invoice: Invoice, issued_on: date | None = None, payment_terms_days: int = DEFAULT_PAYMENT_TERMS_DAYS
) -> Invoice:
    """Number the invoice, copy the billing snapshot from the customer, fix its totals."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice.pk)
    if invoice.is_issued:
        raise invoice_locked_error(invoice.number)
    customer = invoice.customer
    if customer is None:
        raise ValidationError(_("An invoice needs a customer before it can be issued."), code="no_customer")
    lines = list(invoice.lines.values_list("quantity", "unit_price", "vat_rate"))
    if not lines:
        raise ValidationError(
            _("An invoice needs at least one line before it can be issued."), code="no_lines"
        )
    totals = invoice_totals(lines)
    issued_on = issued_on or timezone.localdate()

    invoice.number = _next_invoice_number()
    invoice.issued_on = issued_on
    invoice.due_on = issued_on + timedelta(days=payment_terms_days)
    invoice.billing_name = customer.name
    invoice.billing_organisation_number = customer.organisation_number
    invoice.billing_address = customer.postal_address
    invoice.billing_email = customer.email
    invoice.net_amount, invoice.vat_amount, invoice.total_amount = totals.net, totals.vat, totals.total
    invoice.save()
    return invoice


@transaction.atomic
def invoice_create(
    *,
    customer: Customer,
    lines: list[tuple[str, Decimal, Decimal]],
    contract_id: int | None = None,
    issue_on: date | None = None,
) -> Invoice:
    """A draft with lines given as (description, quantity, unit_price); issued when `issue_on` is given."""
    invoice = Invoice.objects.create(customer=customer, contract_id=contract_id)
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, description=description, quantity=quantity, unit_price=unit_price)
        for description, quantity, unit_price in lines
    )
    if issue_on is not None:
        invoice = invoice_issue(invoice=invoice, issued_on=issue_on)
    return invoice


@transaction.atomic
def credit_note_create(*, invoice: Invoice, issued_on: date | None = None) -> Invoice:
    """Credit an issued invoice in full: a new credit note with every line negated, issued at once."""
    if not invoice.is_issued:
        raise ValidationError(_("Only an issued invoice can be credited; edit or delete the draft instead."))
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        raise ValidationError(_("A credit note cannot itself be credited."))
    if invoice.credit_notes.exists():
        raise ValidationError(_("Invoice %(number)s has already been credited.") % {"number": invoice.number})
    note = Invoice.objects.create(
        kind=Invoice.Kind.CREDIT_NOTE,
        credited_invoice=invoice,
        customer_id=invoice.customer_id,
        contract_id=invoice.contract_id,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=note,
            description=_("Credit: %(description)s") % {"description": line.description},
            quantity=line.quantity,
            unit_price=-line.unit_price,
            vat_rate=line.vat_rate,
        )
        for line in invoice.lines.all()
    )
    return invoice_issue(invoice=note, issued_on=issued_on, payment_terms_days=0)


@transaction.atomic
def payment_register(*, invoice: Invoice, amount: Decimal, paid_on: date, reference: str = "") -> Payment:
    if not invoice.is_issued:
        raise ValidationError(_("A payment can only be registered against an issued invoice."))
    return Payment.objects.create(invoice=invoice, amount=amount, paid_on=paid_on, reference=reference)
