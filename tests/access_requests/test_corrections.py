"""Correction (GDPR art. 16): Alice corrects her details and her contact's on /my-data/details/;
each change is audited with the fields it touched; her issued invoices keep what they were issued
to; Bob's contacts are out of her reach; the sign-in address is not hers to change here."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from customers.models import Contact, Customer
from tests.access_requests.conftest import issue_invoice
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = reverse("access_requests:details")


def signed_in(client: Client, customer: Customer) -> Client:
    assert customer.user is not None
    client.force_login(customer.user)
    return client


def posted(customer: Customer, contacts: list[Contact], **changes: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer-name": customer.name,
        "customer-phone": customer.phone,
        "customer-street_address": customer.street_address,
        "customer-postal_code": customer.postal_code,
        "customer-city": customer.city,
        "contact-TOTAL_FORMS": str(len(contacts)),
        "contact-INITIAL_FORMS": str(len(contacts)),
        "contact-MIN_NUM_FORMS": "0",
        "contact-MAX_NUM_FORMS": "1000",
    }
    for index, contact in enumerate(contacts):
        data |= {
            f"contact-{index}-id": str(contact.pk),
            f"contact-{index}-name": contact.name,
            f"contact-{index}-phone": contact.phone,
            f"contact-{index}-role": contact.role,
        }
    return data | changes


def test_alice_corrects_her_address_and_her_contacts_phone_and_each_change_is_audited(
    client: Client, alice: Customer
) -> None:
    contact = ContactFactory.create(customer=alice, name="Astrid Hansen", phone="111 11 111")
    invoice = issue_invoice(alice, issued_on=date(2026, 1, 15))
    snapshot = (invoice.billing_name, invoice.billing_address)
    page = signed_in(client, alice).get(URL).content.decode()
    assert "bokføringsloven" in page or "regnskapsdokumenter" in page
    assert 'name="customer-email"' not in page and 'name="contact-0-email"' not in page

    response = client.post(
        URL,
        posted(
            alice,
            [contact],
            **{
                "customer-street_address": "Storgata 2",
                "customer-city": "Bergen",
                "contact-0-phone": "222 22 222",
            },
        ),
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    contact.refresh_from_db()
    assert (alice.street_address, alice.city, contact.phone) == ("Storgata 2", "Bergen", "222 22 222")
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.CORRECTED, customer_id=alice.pk).order_by("pk")
    assert [(event.object_type, event.changed_fields, event.actor_id) for event in events] == [
        ("customers.Customer", ["city", "street_address"], alice.user_id),
        ("customers.Contact", ["phone"], alice.user_id),
    ]
    invoice.refresh_from_db()
    assert (invoice.billing_name, invoice.billing_address) == snapshot


def test_an_unchanged_form_records_nothing(client: Client, alice: Customer) -> None:
    signed_in(client, alice).post(URL, posted(alice, []))
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CORRECTED).exists()


def test_bad_input_is_a_400_with_the_reason_and_changes_nothing(client: Client, alice: Customer) -> None:
    response = signed_in(client, alice).post(URL, posted(alice, [], **{"customer-name": ""}))
    assert response.status_code == 400
    assert "errors" in response.content.decode()
    alice.refresh_from_db()
    assert alice.name == "Alice Hansen"


def test_alice_cannot_reach_bobs_contact_through_the_form(
    client: Client, alice: Customer, bob: Customer
) -> None:
    bobs = ContactFactory.create(customer=bob, name="Bjørn Berg", phone="999 99 999")
    forged = posted(alice, [bobs], **{"contact-0-phone": "000 00 000"})
    response = signed_in(client, alice).post(URL, forged)
    assert response.status_code == 400
    bobs.refresh_from_db()
    assert bobs.phone == "999 99 999"


def test_the_sign_in_address_cannot_be_changed_here(client: Client, alice: Customer) -> None:
    signed_in(client, alice).post(URL, posted(alice, [], **{"customer-email": "mallory@evil.example"}))
    alice.refresh_from_db()
    assert alice.email == "alice@example.no"


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    assert client.get(URL).status_code == 302
