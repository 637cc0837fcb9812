"""Staff screens: readable, searchable and fast (a constant number of queries per changelist)."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import services
from customers.models import Customer, Invoice
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    InvoiceFactory,
)

pytestmark = pytest.mark.django_db


def _customer_with_everything() -> Customer:
    customer = CustomerFactory.create()
    ContactFactory.create(customer=customer)
    ContractFactory.create(customer=customer, ended_on=date(2025, 6, 30))
    invoice = services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2025, 1, 31)
    )
    services.payment_register(invoice=invoice, amount=Decimal("100.00"), paid_on=date(2025, 2, 5))
    CorrespondenceFactory.create(customer=customer)
    return customer


def _queries_for(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


CHANGELISTS = [
    "admin:customers_customer_changelist",
    "admin:customers_contact_changelist",
    "admin:customers_contract_changelist",
    "admin:customers_invoice_changelist",
    "admin:customers_payment_changelist",
    "admin:customers_correspondence_changelist",
]


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelists_do_not_grow_queries_with_rows(
    client: Client, superuser: Any, name: str, mfa_login: Any
) -> None:
    mfa_login(client, superuser)
    url = reverse(name)
    for _ in range(5):
        _customer_with_everything()
    with_five = _queries_for(client, url)
    for _ in range(45):
        _customer_with_everything()
    with_fifty = _queries_for(client, url)
    assert with_fifty == with_five, f"{name}: {with_five} queries for 5 rows, {with_fifty} for 50"


@pytest.fixture
def staff_client(client: Client, superuser: Any, mfa_login: Any) -> Client:
    mfa_login(client, superuser)
    return client


def _listed(client: Client, query: str, **filters: str) -> str:
    response = client.get(reverse("admin:customers_customer_changelist"), {"q": query, **filters})
    assert response.status_code == 200
    return response.content.decode()


def test_search_finds_customers_by_name_email_org_number_and_invoice_number(staff_client: Client) -> None:
    fjord = CustomerFactory.create(
        name="Fjord Design AS", email="post@fjord.example.no", organisation_number="923609016"
    )
    ContactFactory.create(customer=fjord, email="kari@fjord.example.no")
    invoice = services.invoice_issue(
        invoice=InvoiceFactory.create(customer=fjord), issued_on=date(2026, 2, 1)
    )
    CustomerFactory.create(name="Bergen Bakeri AS")
    for term in ["Fjord", "post@fjord", "kari@fjord.example.no", "923 609 016", str(invoice.number)]:
        page = _listed(staff_client, term)
        assert "Fjord Design AS" in page, term
        assert "Bergen Bakeri AS" not in page, term


def test_filter_by_relationship_status_and_show_the_end_date(staff_client: Client) -> None:
    active = CustomerFactory.create(name="Aktiv Kunde AS")
    ContractFactory.create(customer=active)
    ended = CustomerFactory.create(name="Tidligere Kunde AS")
    ContractFactory.create(customer=ended, started_on=date(2020, 1, 1), ended_on=date(2025, 5, 31))
    ended_page = _listed(staff_client, "", relationship="ended")
    assert "Tidligere Kunde AS" in ended_page
    assert "Aktiv Kunde AS" not in ended_page
    assert "31.05.2025" in ended_page
    active_page = _listed(staff_client, "", relationship="active")
    assert "Aktiv Kunde AS" in active_page
    assert "Tidligere Kunde AS" not in active_page


def test_contacts_and_contracts_are_edited_inline(staff_client: Client) -> None:
    customer = CustomerFactory.create(name="Inline AS")
    contract = ContractFactory.create(customer=customer)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    data = {
        "kind": customer.kind,
        "name": customer.name,
        "organisation_number": customer.organisation_number,
        "email": customer.email,
        "phone": "",
        "street_address": "",
        "postal_code": "",
        "city": "",
        "country": "NO",
        "user": "",
        "contacts-TOTAL_FORMS": "1",
        "contacts-INITIAL_FORMS": "0",
        "contacts-0-name": "Kari Nordmann",
        "contacts-0-email": "kari@inline.example.no",
        "contacts-0-phone": "",
        "contacts-0-role": "Faktura",
        "contracts-TOTAL_FORMS": "1",
        "contracts-INITIAL_FORMS": "1",
        "contracts-0-id": str(contract.pk),
        "contracts-0-customer": str(customer.pk),
        "contracts-0-service": contract.service,
        "contracts-0-monthly_price": "299.00",
        "contracts-0-started_on": "01.01.2024",
        "contracts-0-ended_on": "31.12.2025",
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    contract.refresh_from_db()
    assert contract.ended_on == date(2025, 12, 31)
    assert contract.monthly_price == Decimal("299.00")
    assert customer.contacts.get().email == "kari@inline.example.no"


def test_a_wrong_organisation_number_is_shown_on_the_form(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("admin:customers_customer_add"),
        {
            "kind": "organisation",
            "name": "Feil AS",
            "organisation_number": "923609017",
            "email": "feil@example.no",
            "country": "NO",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
            "contracts-TOTAL_FORMS": "0",
            "contracts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "kontrollsifferet" in response.content.decode() or "check digit" in response.content.decode()
    assert not Customer.objects.filter(name="Feil AS").exists()


def test_an_issued_invoice_is_read_only_and_cannot_be_deleted_in_admin(staff_client: Client) -> None:
    invoice = services.invoice_issue(invoice=InvoiceFactory.create(), issued_on=date(2026, 1, 15))
    page = staff_client.get(reverse("admin:customers_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200
    assert 'name="billing_name"' not in page.content.decode()
    assert staff_client.get(reverse("admin:customers_invoice_delete", args=[invoice.pk])).status_code == 403


def test_staff_issue_and_credit_invoices_with_admin_actions(staff_client: Client) -> None:
    draft = InvoiceFactory.create()
    url = reverse("admin:customers_invoice_changelist")
    staff_client.post(url, {"action": "issue_invoices", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.is_issued
    staff_client.post(url, {"action": "credit_invoices", "_selected_action": [draft.pk]})
    note = Invoice.objects.get(credited_invoice=draft)
    assert note.total_amount == -draft.total_amount
