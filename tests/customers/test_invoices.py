"""Issuing, numbering and the immutability of issued invoices (they are accounting records)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from customers import services
from customers.models import Invoice, InvoiceLine, InvoiceLockedError
from tests.factories import CustomerFactory, InvoiceFactory, InvoiceLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued_invoice() -> Invoice:
    customer = CustomerFactory.create(
        name="Fjord Design AS", street_address="Kaigata 1", postal_code="5016", city="Bergen"
    )
    return services.invoice_create(
        customer=customer,
        lines=[
            ("WordPress hosting, March", Decimal("1"), Decimal("249.00")),
            ("Domain", Decimal("2"), Decimal("99.50")),
        ],
        issue_on=date(2026, 3, 31),
    )


def test_issuing_numbers_the_invoice_and_copies_the_billing_snapshot(issued_invoice: Invoice) -> None:
    assert issued_invoice.number is not None
    assert issued_invoice.issued_on == date(2026, 3, 31)
    assert issued_invoice.due_on == date(2026, 4, 14)
    assert issued_invoice.billing_name == "Fjord Design AS"
    assert issued_invoice.billing_address == "Kaigata 1\n5016 Bergen"
    assert issued_invoice.billing_organisation_number == issued_invoice.customer.organisation_number
    assert (issued_invoice.net_amount, issued_invoice.vat_amount, issued_invoice.total_amount) == (
        Decimal("448.00"),
        Decimal("112.00"),
        Decimal("560.00"),
    )


def test_invoice_numbers_are_consecutive(issued_invoice: Invoice) -> None:
    first = issued_invoice.number
    assert first is not None
    following = [services.invoice_issue(invoice=InvoiceFactory.create()) for _ in range(3)]
    assert [invoice.number for invoice in following] == [
        first + 1,
        first + 2,
        first + 3,
    ]


def test_the_snapshot_keeps_what_was_invoiced_when_the_customer_changes(issued_invoice: Invoice) -> None:
    customer = issued_invoice.customer
    customer.name = "Fjord Design og Co AS"
    customer.save()
    issued_invoice.refresh_from_db()
    assert issued_invoice.billing_name == "Fjord Design AS"


def test_an_invoice_without_lines_cannot_be_issued() -> None:
    with pytest.raises(ValidationError, match="at least one line"):
        services.invoice_issue(invoice=InvoiceFactory.create(line=None))


def test_an_issued_invoice_cannot_be_issued_again(issued_invoice: Invoice) -> None:
    with pytest.raises(InvoiceLockedError):
        services.invoice_issue(invoice=issued_invoice)


def test_editing_an_issued_invoice_is_refused_with_a_clear_error(issued_invoice: Invoice) -> None:
    issued_invoice.billing_name = "Someone else"
    with pytest.raises(ValidationError) as error:
        issued_invoice.full_clean()
    assert "accounting record" in " ".join(error.value.messages)
    assert "credit note" in " ".join(error.value.messages)


def test_the_database_refuses_changing_an_issued_invoice_even_by_raw_sql(issued_invoice: Invoice) -> None:
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE customers_invoice SET total_amount = 1 WHERE id = %s", [issued_invoice.pk])
    issued_invoice.refresh_from_db()
    assert issued_invoice.total_amount == Decimal("560.00")


def test_the_database_refuses_changing_lines_of_an_issued_invoice(issued_invoice: Invoice) -> None:
    line = issued_invoice.lines.first()
    assert line is not None
    for statement, params in [
        ("UPDATE customers_invoiceline SET unit_price = 1 WHERE id = %s", [line.pk]),
        ("DELETE FROM customers_invoiceline WHERE id = %s", [line.pk]),
        (
            "INSERT INTO customers_invoiceline (invoice_id, description, quantity, unit_price, vat_rate) "
            "VALUES (%s, 'extra', 1, 1, 0.25)",
            [issued_invoice.pk],
        ),
    ]:
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    assert issued_invoice.lines.count() == 2


def test_a_line_of_an_issued_invoice_fails_model_validation(issued_invoice: Invoice) -> None:
    with pytest.raises(ValidationError, match="accounting record"):
        InvoiceLine(invoice=issued_invoice, description="extra", unit_price=Decimal("1")).full_clean()


def test_drafts_can_be_edited() -> None:
    draft = InvoiceFactory.create()
    InvoiceLineFactory.create(invoice=draft, unit_price=Decimal("10"))
    draft.due_on = date(2026, 5, 1)
    draft.full_clean()
    draft.save()
    assert draft.lines.count() == 2


def test_the_database_still_deletes_lines_with_their_invoice() -> None:
    # The purge removes invoices past their accounting period; the lines go with them by cascade.
    old = services.invoice_create(
        customer=CustomerFactory.create(),
        lines=[("Hosting", Decimal("1"), Decimal("99"))],
        issue_on=date(2019, 3, 31),
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_invoice WHERE id = %s", [old.pk])
    assert not InvoiceLine.objects.filter(invoice_id=old.pk).exists()


def test_the_customer_can_go_while_the_invoice_stays(issued_invoice: Invoice) -> None:
    issued_invoice.customer.delete()
    issued_invoice.refresh_from_db()
    assert issued_invoice.customer_id is None
    assert issued_invoice.billing_name == "Fjord Design AS"


def test_a_credit_note_reverses_an_invoice_in_full(issued_invoice: Invoice) -> None:
    note = services.credit_note_create(invoice=issued_invoice, issued_on=date(2026, 4, 2))
    assert note.kind == Invoice.Kind.CREDIT_NOTE
    assert note.credited_invoice == issued_invoice
    assert issued_invoice.number is not None
    assert note.number == issued_invoice.number + 1
    assert note.total_amount == -issued_invoice.total_amount
    with pytest.raises(ValidationError, match="already been credited"):
        services.credit_note_create(invoice=issued_invoice)


def test_payments_are_registered_against_issued_invoices_only(issued_invoice: Invoice) -> None:
    payment = services.payment_register(
        invoice=issued_invoice, amount=Decimal("560.00"), paid_on=date(2026, 4, 10)
    )
    assert issued_invoice.payments.get() == payment
    with pytest.raises(ValidationError):
        services.payment_register(
            invoice=InvoiceFactory.create(), amount=Decimal("1"), paid_on=date(2026, 4, 10)
        )
