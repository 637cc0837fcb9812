"""The audit trail of staff: every look at a customer's records and every deletion in the admin leaves
an event with ids only; events cannot be changed or deleted; only the Privacy officer reads them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import helpers
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from access_requests import services as access_request_services
from audit.models import AuditEvent
from customers import services
from customers.models import Contact, Customer
from portal.admin_audit import AuditedAdminMixin, holds_customer_data
from retention.models import LegalHold
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    InvoiceFactory,
)
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

VIEWED = AuditEvent.Kind.CUSTOMER_VIEWED
DELETED = AuditEvent.Kind.MANUAL_DELETION


@pytest.fixture
def customer() -> Customer:
    customer = CustomerFactory.create(name="Fjellstue AS", email="post@fjellstue.example.no")
    ContactFactory.create(customer=customer, name="Kari Nordmann", email="kari@fjellstue.example.no")
    ContactFactory.create(customer=customer, name="Ola Nordmann", email="ola@fjellstue.example.no")
    return customer


@pytest.fixture
def staff(client: Client, superuser: Any) -> Any:
    sign_in_with_second_factor(client, superuser)
    return superuser


def _events(kind: str) -> list[tuple[Any, ...]]:
    return list(
        AuditEvent.objects.filter(kind=kind)
        .order_by("pk")
        .values_list("actor_id", "customer_id", "object_type", "object_id")
    )


# --- Views -------------------------------------------------------------------------------------


def test_viewing_a_customers_page_is_recorded(client: Client, staff: Any, customer: Customer) -> None:
    assert client.get(reverse("admin:customers_customer_change", args=[customer.pk])).status_code == 200
    assert _events(VIEWED) == [(staff.pk, customer.pk, "customers.Customer", str(customer.pk))]


@pytest.mark.parametrize(
    "kind", ["invoice", "correspondence", "contact", "contract", "access request", "user"]
)
def test_viewing_any_record_about_a_customer_records_the_customers_id(
    client: Client, staff: Any, customer: Customer, alice: Customer, kind: str
) -> None:
    records = {
        "invoice": lambda: services.invoice_issue(
            invoice=InvoiceFactory.create(customer=customer), issued_on=date(2026, 1, 15)
        ),
        "correspondence": lambda: CorrespondenceFactory.create(customer=customer),
        "contact": lambda: customer.contacts.first(),
        "contract": lambda: ContractFactory.create(customer=customer),
        "access request": lambda: access_request_services.access_request_create(
            customer=customer, acting_user=staff
        ),
        "user": lambda: alice.user,
    }
    record = records[kind]()
    expected_customer = alice.pk if kind == "user" else customer.pk
    opts = record._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])
    assert client.get(url).status_code == 200
    assert _events(VIEWED) == [(staff.pk, expected_customer, opts.label, str(record.pk))]


def test_lists_and_refusals_record_no_view(client: Client, support_user: Any, customer: Customer) -> None:
    sign_in_with_second_factor(client, support_user)
    invoice = services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2026, 1, 15)
    )
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200
    assert client.get(reverse("admin:customers_invoice_change", args=[invoice.pk])).status_code == 403
    assert _events(VIEWED) == []


def test_a_form_shown_again_with_errors_is_a_view_and_a_saved_change_is_not(
    client: Client, staff: Any, customer: Customer
) -> None:
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    data = _change_form_data(client.get(url))
    before = len(_events(VIEWED))
    assert client.post(url, {**data, "name": ""}).status_code == 200  # shown again, with the error
    assert len(_events(VIEWED)) == before + 1
    assert client.post(url, {**data, "name": "Fjellstue og Sønner AS"}).status_code == 302
    assert len(_events(VIEWED)) == before + 1


# --- Deletions ---------------------------------------------------------------------------------


def test_deleting_a_record_on_its_delete_page_is_recorded(
    client: Client, staff: Any, customer: Customer
) -> None:
    contact = customer.contacts.first()
    response = client.post(reverse("admin:customers_contact_delete", args=[contact.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert _events(DELETED) == [(staff.pk, customer.pk, "customers.Contact", str(contact.pk))]


def test_deleting_selected_records_records_each_one(client: Client, staff: Any, customer: Customer) -> None:
    contacts = sorted(customer.contacts.values_list("pk", flat=True))
    response = client.post(
        reverse("admin:customers_contact_changelist"),
        {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: contacts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not Contact.objects.filter(pk__in=contacts).exists()
    assert sorted(_events(DELETED)) == [
        (staff.pk, customer.pk, "customers.Contact", str(pk)) for pk in contacts
    ]


def test_deleting_a_customer_is_recorded(client: Client, staff: Any) -> None:
    customer = CustomerFactory.create()
    response = client.post(reverse("admin:customers_customer_delete", args=[customer.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert _events(DELETED) == [(staff.pk, customer.pk, "customers.Customer", str(customer.pk))]


def test_deleting_a_row_of_an_inline_is_recorded(client: Client, staff: Any, customer: Customer) -> None:
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    page = client.get(url)
    data = _change_form_data(page)
    kari = customer.contacts.get(name="Kari Nordmann")
    prefix = next(
        key[: -len("-id")] for key, value in data.items() if key.endswith("-id") and value == str(kari.pk)
    )
    data[f"{prefix}-DELETE"] = "on"
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert not Contact.objects.filter(pk=kari.pk).exists()
    assert _events(DELETED) == [(staff.pk, customer.pk, "customers.Contact", str(kari.pk))]


def _change_form_data(response: Any) -> dict[str, Any]:
    """The POST a browser sends for an admin change page as shown: the form and its inlines."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for bound in form:
            value = bound.value()
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(item) for item in value]
            elif value is not None:
                data[bound.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


# --- Holds ---------------------------------------------------------------------------------------


def test_placing_and_releasing_a_hold_in_the_admin_is_recorded(
    client: Client, privacy_officer: Any, customer: Customer
) -> None:
    sign_in_with_second_factor(client, privacy_officer)
    response = client.post(
        reverse("admin:retention_legalhold_add"), {"customer": customer.pk, "reason": "Tvist", "ends_on": ""}
    )
    assert response.status_code == 302
    hold = LegalHold.objects.get(customer=customer)
    response = client.post(
        reverse("admin:retention_legalhold_changelist"),
        {"action": "release_holds", helpers.ACTION_CHECKBOX_NAME: [hold.pk]},
    )
    assert response.status_code == 302
    placed = _events(AuditEvent.Kind.HOLD_PLACED)
    released = _events(AuditEvent.Kind.HOLD_RELEASED)
    assert [event[:2] for event in placed] == [(privacy_officer.pk, customer.pk)]
    assert [event[:2] for event in released] == [(privacy_officer.pk, customer.pk)]


# --- The trail itself ------------------------------------------------------------------------------


def test_every_admin_screen_is_audited() -> None:
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, AuditedAdminMixin), model._meta.label


def test_events_hold_ids_only(client: Client, staff: Any, customer: Customer) -> None:
    client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    client.post(
        reverse("admin:customers_contact_delete", args=[customer.contacts.first().pk]), {"post": "yes"}
    )
    personal = ["Fjellstue", "fjellstue.example.no", "Kari", "Ola", "Nordmann"]
    for event in AuditEvent.objects.values("kind", "object_type", "object_id"):
        assert not any(word in str(value) for value in event.values() for word in personal), event
        assert event["object_id"].isdigit()
    assert {field.name for field in AuditEvent._meta.concrete_fields} == {
        "id",
        "kind",
        "actor",
        "customer_id",
        "object_type",
        "object_id",
        "changed_fields",
        "created_at",
    }
    # changed_fields names fields of the model the event is about, never their values.
    for object_type, changed in AuditEvent.objects.exclude(changed_fields=[]).values_list(
        "object_type", "changed_fields"
    ):
        names = {field.name for field in apps.get_model(object_type)._meta.get_fields()}
        assert set(changed) <= names, (object_type, changed)


def test_an_event_cannot_be_changed(staff: Any, customer: Customer) -> None:
    event = AuditEvent.record(VIEWED, actor=staff, customer_id=customer.pk, target=customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(customer_id=customer.pk + 1)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET kind = 'purge' WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert (event.kind, event.customer_id) == (VIEWED, customer.pk)


def test_an_event_cannot_be_deleted(staff: Any, customer: Customer) -> None:
    event = AuditEvent.record(DELETED, actor=staff, customer_id=customer.pk, target=customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# --- Who reads it ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("privacy_officer", 200), ("superuser", 200), ("support_user", 403), ("billing_user", 403)],
)
def test_only_the_privacy_officer_reads_the_trail(
    client: Client, request: pytest.FixtureRequest, persona: str, expected: int, customer: Customer
) -> None:
    user = request.getfixturevalue(persona)
    sign_in_with_second_factor(client, user)
    event = AuditEvent.record(VIEWED, actor=user, customer_id=customer.pk, target=customer)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == expected
    assert client.get(reverse("admin:audit_auditevent_change", args=[event.pk])).status_code == expected


@pytest.mark.parametrize("persona", ["privacy_officer", "superuser"])
def test_nobody_adds_changes_or_deletes_an_event_in_the_admin(
    client: Client, request: pytest.FixtureRequest, persona: str, customer: Customer
) -> None:
    user = request.getfixturevalue(persona)
    sign_in_with_second_factor(client, user)
    event = AuditEvent.record(VIEWED, actor=user, customer_id=customer.pk, target=customer)
    page = client.get(reverse("admin:audit_auditevent_change", args=[event.pk])).content.decode()
    assert 'name="_save"' not in page
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert (
        client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"kind": "purge"}).status_code
        == 403
    )
    assert (
        client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk, kind=VIEWED).exists()


def test_the_trail_of_a_customer_can_be_found_by_id(
    client: Client, privacy_officer: Any, customer: Customer
) -> None:
    sign_in_with_second_factor(client, privacy_officer)
    AuditEvent.record(VIEWED, customer_id=customer.pk, target=customer)
    AuditEvent.record(VIEWED, customer_id=customer.pk + 1000)
    response = client.get(reverse("admin:audit_auditevent_changelist"), {"q": str(customer.pk)})
    assert response.status_code == 200
    assert [event.customer_id for event in response.context["cl"].result_list] == [customer.pk]


def test_the_models_that_count_as_customer_data() -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth.models import Group, User

    from audit.models import UserSession
    from customers.models import Invoice, InvoiceLine

    for model in (Customer, Contact, Invoice, InvoiceLine, User, EmailAddress, LegalHold, UserSession):
        assert holds_customer_data(model), model
    for model in (AuditEvent, Group):
        assert not holds_customer_data(model), model
