"""No role can give itself a customer's data, and a changed sign-in address signs in nobody.

Siri (Support) may correct a customer's details but may not see invoices; were she able to give a
contact portal access, or change the address a customer signs in with, she could sign in as the
customer and download the export, invoices included. Pernille (Privacy officer), who may see
everything the portal shows, may do it, and the audit trail names her.

The permission matrix is built from the admin registry: every registered screen × every staff
group, for add, change, delete, view and each action, and every field that decides who signs in.
A screen registered later fails here until its row says what each group may do with it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from customers.models import Contact, Customer
from portal.admin_access import SIGN_IN_FIELDS
from tests.access_requests.test_sign_in import has_code, sign_in
from tests.factories import ContactFactory
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

GROUPS = {"Support": "support_user", "Billing": "billing_user", "Privacy officer": "privacy_officer"}
ATTACKER = "siri.privat@example.no"


@pytest.fixture
def kari(alice: Customer) -> Contact:
    """Alice's accountant, who may sign in and see Alice's data."""
    return ContactFactory.create(
        customer=alice, name="Kari Regnskap", email="kari@regnskap.example.no", portal_access=True
    )


@pytest.fixture
def ola(alice: Customer) -> Contact:
    """Alice's web developer, who may not sign in."""
    return ContactFactory.create(customer=alice, name="Ola Utvikler", email="ola@utvikler.example.no")


def _customer_form(customer: Customer, **changes: str) -> dict[str, str]:
    data = {
        "kind": customer.kind,
        "name": customer.name,
        "organisation_number": customer.organisation_number,
        "email": customer.email,
        "phone": customer.phone,
        "street_address": customer.street_address,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "country": customer.country,
        "contacts-TOTAL_FORMS": "0",
        "contacts-INITIAL_FORMS": "0",
        "contracts-TOTAL_FORMS": "0",
        "contracts-INITIAL_FORMS": "0",
    }
    return {**data, **changes}


def _with_contacts(data: dict[str, str], contacts: list[dict[str, str]], initial: int) -> dict[str, str]:
    data = {**data, "contacts-TOTAL_FORMS": str(len(contacts)), "contacts-INITIAL_FORMS": str(initial)}
    for index, contact in enumerate(contacts):
        data.update({f"contacts-{index}-{name}": value for name, value in contact.items()})
    return data


def _contact_row(contact: Contact, **changes: str) -> dict[str, str]:
    row = {
        "id": str(contact.pk),
        "customer": str(contact.customer_id),
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "role": contact.role,
    }
    if contact.portal_access:
        row["portal_access"] = "on"
    return {**row, **changes}


def _contact_form(contact: Contact | None, customer: Customer, **changes: str) -> dict[str, str]:
    data = {"customer": str(customer.pk), "name": "Ny Kontakt", "email": "", "phone": "", "role": ""}
    if contact is not None:
        data.update(
            {"name": contact.name, "email": contact.email, "phone": contact.phone, "role": contact.role}
        )
        if contact.portal_access:
            data["portal_access"] = "on"
    return {**data, **changes}


def _gets_a_code(address: str) -> bool:
    mail.outbox.clear()
    Client().post(reverse("account_request_login_code"), {"email": address})
    return any(has_code(message.body) for message in mail.outbox if address in message.to)


# --- The attack: Support gives itself a way in --------------------------------------------------


def test_support_cannot_add_a_contact_who_signs_in(
    client: Client, support_user: User, alice: Customer
) -> None:
    sign_in_with_second_factor(client, support_user)
    client.post(
        reverse("admin:customers_contact_add"),
        _contact_form(None, alice, name="Siri Privat", email=ATTACKER, portal_access="on"),
    )
    assert not Contact.objects.filter(email=ATTACKER, portal_access=True).exists()
    assert not _gets_a_code(ATTACKER)


def test_support_cannot_give_a_contact_portal_access(
    client: Client, support_user: User, ola: Contact
) -> None:
    sign_in_with_second_factor(client, support_user)
    url = reverse("admin:customers_contact_change", args=[ola.pk])
    client.post(url, _contact_form(ola, ola.customer, portal_access="on"))
    ola.refresh_from_db()
    assert not ola.portal_access
    assert not _gets_a_code(ola.email)


def test_support_cannot_change_the_address_a_contact_signs_in_with(
    client: Client, support_user: User, kari: Contact
) -> None:
    sign_in_with_second_factor(client, support_user)
    client.post(
        reverse("admin:customers_contact_change", args=[kari.pk]),
        _contact_form(kari, kari.customer, email=ATTACKER),
    )
    kari.refresh_from_db()
    assert kari.email == "kari@regnskap.example.no"
    assert not _gets_a_code(ATTACKER)


def test_support_cannot_move_a_contact_with_access_to_another_customer(
    client: Client, support_user: User, kari: Contact, bob: Customer
) -> None:
    sign_in_with_second_factor(client, support_user)
    url = reverse("admin:customers_contact_change", args=[kari.pk])
    client.post(url, _contact_form(kari, bob))
    kari.refresh_from_db()
    assert kari.customer_id != bob.pk


def test_support_cannot_change_the_address_a_customer_signs_in_with(
    client: Client, support_user: User, alice: Customer
) -> None:
    sign_in_with_second_factor(client, support_user)
    url = reverse("admin:customers_customer_change", args=[alice.pk])
    client.post(url, _customer_form(alice, email=ATTACKER))
    alice.refresh_from_db()
    assert alice.email == "alice@example.no"
    assert not _gets_a_code(ATTACKER)


def test_support_cannot_change_who_signs_in_through_the_customers_contacts(
    client: Client, support_user: User, alice: Customer, kari: Contact, ola: Contact
) -> None:
    sign_in_with_second_factor(client, support_user)
    url = reverse("admin:customers_customer_change", args=[alice.pk])
    attempts = [
        [_contact_row(kari, email=ATTACKER), _contact_row(ola)],  # Kari's address becomes Siri's
        [_contact_row(kari), _contact_row(ola, portal_access="on")],  # Ola may sign in
        [_contact_row(kari), _contact_row(ola), {"name": "Siri", "email": ATTACKER, "portal_access": "on"}],
    ]
    for contacts in attempts:
        response = client.post(url, _with_contacts(_customer_form(alice), contacts, initial=2))
        assert response.status_code in (200, 302, 403)
    kari.refresh_from_db()
    ola.refresh_from_db()
    assert kari.email == "kari@regnskap.example.no" and not ola.portal_access
    assert not Contact.objects.filter(email=ATTACKER, portal_access=True).exists()
    assert not _gets_a_code(ATTACKER)


def test_support_still_corrects_a_customers_other_details_and_adds_plain_contacts(
    client: Client, support_user: User, alice: Customer, kari: Contact
) -> None:
    sign_in_with_second_factor(client, support_user)
    url = reverse("admin:customers_customer_change", args=[alice.pk])
    data = _with_contacts(
        _customer_form(alice, phone="+47 99999999"),
        [
            _contact_row(kari, phone="+47 22222222"),
            {"name": "Ny Kontakt", "email": "ny@example.no", "role": "IT"},
        ],
        initial=1,
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    alice.refresh_from_db()
    kari.refresh_from_db()
    assert alice.phone == "+47 99999999" and kari.phone == "+47 22222222"
    assert Contact.objects.get(email="ny@example.no").portal_access is False


def test_nobody_picks_the_user_a_customer_signs_in_as(
    client: Client, privacy_officer: User, support_user: User, alice: Customer, bob: Customer
) -> None:
    sign_in_with_second_factor(client, privacy_officer)
    assert bob.user is not None
    client.post(
        reverse("admin:customers_customer_change", args=[alice.pk]),
        _customer_form(alice, user=str(bob.user.pk)),
    )
    alice.refresh_from_db()
    assert alice.user is not None and alice.user.username == "alice"


# --- The Privacy officer may, and the trail names her --------------------------------------------


def test_the_privacy_officer_gives_a_contact_access_and_the_trail_names_her(
    client: Client, privacy_officer: User, ola: Contact
) -> None:
    sign_in_with_second_factor(client, privacy_officer)
    url = reverse("admin:customers_contact_change", args=[ola.pk])
    response = client.post(url, _contact_form(ola, ola.customer, portal_access="on"))
    assert response.status_code == 302, response.content.decode()[:3000]
    ola.refresh_from_db()
    assert ola.portal_access
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PORTAL_ACCESS_GRANTED)
    assert (event.actor_id, event.customer_id, event.object_type, event.object_id) == (
        privacy_officer.pk,
        ola.customer_id,
        "customers.Contact",
        str(ola.pk),
    )
    assert _gets_a_code(ola.email)


def test_the_privacy_officer_changes_a_customers_address_and_the_trail_names_her(
    client: Client, privacy_officer: User, alice: Customer
) -> None:
    sign_in_with_second_factor(client, privacy_officer)
    url = reverse("admin:customers_customer_change", args=[alice.pk])
    response = client.post(url, _customer_form(alice, email="alice.hansen@example.no"))
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SIGN_IN_ADDRESS_CHANGED)
    assert (event.actor_id, event.customer_id, event.object_type) == (
        privacy_officer.pk,
        alice.pk,
        "customers.Customer",
    )


# --- A changed sign-in address signs in nobody ----------------------------------------------------


def test_changing_a_customers_address_ends_her_sessions_and_tells_both_addresses(
    client: Client, privacy_officer: User, alice: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    alice_browser = Client()
    sign_in(alice_browser, "alice@example.no")
    assert alice_browser.get("/my-data/").status_code == 200
    mail.outbox.clear()

    sign_in_with_second_factor(client, privacy_officer)
    url = reverse("admin:customers_customer_change", args=[alice.pk])
    with django_capture_on_commit_callbacks(execute=True):  # the notices go once the change commits
        response = client.post(url, _customer_form(alice, email="alice.hansen@example.no"))
    assert response.status_code == 302

    assert alice_browser.get("/my-data/").status_code == 302  # signed out
    to_old = [message for message in mail.outbox if message.to == ["alice@example.no"]]
    to_new = [message for message in mail.outbox if message.to == ["alice.hansen@example.no"]]
    assert len(to_old) == 1 and len(to_new) == 1
    assert "alice.hansen" not in to_old[0].body and "alice.hansen" not in to_old[0].subject
    assert "endret av våre ansatte" in to_old[0].body and "changed by our staff" in to_old[0].body
    assert not _gets_a_code("alice@example.no")
    assert _gets_a_code("alice.hansen@example.no")


def test_changing_a_contacts_address_ends_her_sessions_and_tells_both(
    kari: Contact, django_capture_on_commit_callbacks: Any
) -> None:
    kari_browser = Client()
    sign_in(kari_browser, "kari@regnskap.example.no")
    mail.outbox.clear()

    kari.refresh_from_db()  # she has a user now
    kari.email = "kari.ny@regnskap.example.no"
    with django_capture_on_commit_callbacks(execute=True):
        kari.save()  # whichever screen or service saves it

    assert kari_browser.get("/my-data/").status_code == 302
    assert sorted(message.to[0] for message in mail.outbox) == [
        "kari.ny@regnskap.example.no",
        "kari@regnskap.example.no",
    ]
    old = next(message for message in mail.outbox if message.to == ["kari@regnskap.example.no"])
    assert "kari.ny" not in old.body


def test_taking_a_contacts_access_away_ends_her_sessions(kari: Contact) -> None:
    kari_browser = Client()
    sign_in(kari_browser, "kari@regnskap.example.no")
    mail.outbox.clear()
    kari.refresh_from_db()
    kari.portal_access = False
    kari.save()
    assert kari_browser.get("/my-data/").status_code == 302
    assert mail.outbox == []


def test_other_changes_leave_her_signed_in(alice: Customer) -> None:
    alice_browser = Client()
    sign_in(alice_browser, "alice@example.no")
    mail.outbox.clear()
    alice.phone = "+47 40000000"
    alice.email = "Alice@Example.no"  # the same address, as staff typed it
    alice.save()
    assert alice_browser.get("/my-data/").status_code == 200
    assert mail.outbox == []


# --- The matrix -----------------------------------------------------------------------------------

# What each group may do on each registered screen: "view", "add", "change", "delete" and
# "action:<name>" for each action it is offered on a changelist it can open.
NOTHING: dict[str, set[str]] = {"Support": set(), "Billing": set(), "Privacy officer": set()}
EXPECTED: dict[str, dict[str, set[str]]] = {
    "access_requests.AccessRequest": {
        **NOTHING,
        "Privacy officer": {"view", "add", "change", "action:retry_failed_builds"},
    },
    # Approve, reject, extend: through the change permission (the customer asks; nobody deletes).
    "access_requests.ErasureRequest": {**NOTHING, "Privacy officer": {"view", "change"}},
    "account.EmailAddress": NOTHING,
    "audit.AuditEvent": {**NOTHING, "Privacy officer": {"view"}},
    "auth.Group": NOTHING,
    "auth.User": NOTHING,
    "customers.Contact": {
        "Support": {"view", "add", "change"},
        "Billing": set(),
        "Privacy officer": {"view", "change"},
    },
    "customers.Contract": {"Support": {"view", "change"}, "Billing": {"view"}, "Privacy officer": {"view"}},
    "customers.Correspondence": {
        "Support": {"view", "change"},
        "Billing": set(),
        "Privacy officer": {"view"},
    },
    "customers.Customer": {
        "Support": {"view", "change"},
        "Billing": {"view"},
        "Privacy officer": {"view", "change"},
    },
    "customers.Invoice": {
        "Support": set(),
        "Billing": {
            "view",
            "add",
            "change",
            "delete",
            "action:delete_selected",
            "action:issue_invoices",
            "action:credit_invoices",
        },
        "Privacy officer": {"view"},
    },
    "customers.Payment": {
        "Support": set(),
        "Billing": {"view", "add", "change"},
        "Privacy officer": {"view"},
    },
    "mfa.Authenticator": NOTHING,
    "processors.ProcessorCheck": {**NOTHING, "Privacy officer": {"view"}},
    "processors.ProcessorJob": {**NOTHING, "Privacy officer": {"view"}},
    "processors.ProcessorOverview": {**NOTHING, "Privacy officer": {"view"}},
    "retention.DeletionLog": {**NOTHING, "Privacy officer": {"view"}},
    "retention.LegalHold": {**NOTHING, "Privacy officer": {"view", "add", "change", "action:release_holds"}},
    "retention.PurgeRun": {**NOTHING, "Privacy officer": {"view"}},
}

# The fields that decide who signs in, and the groups that may edit them on a record that signs in.
EDITABLE_BY: dict[tuple[str, str], set[str]] = {
    ("customers.Customer", "email"): {"Privacy officer"},
    ("customers.Customer", "user"): set(),
    ("customers.Contact", "email"): {"Privacy officer"},
    ("customers.Contact", "portal_access"): {"Privacy officer"},
    ("customers.Contact", "customer"): {"Privacy officer"},
    ("customers.Contact", "user"): set(),
}


def _request_as(user: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _may(model_admin: Any, user: User) -> set[str]:
    request = _request_as(user)
    verbs = {
        verb
        for verb in ("view", "add", "change", "delete")
        if getattr(model_admin, f"has_{verb}_permission")(request)
    }
    if model_admin.has_view_or_change_permission(request):  # actions are offered on the changelist only
        verbs |= {f"action:{name}" for name in model_admin.get_actions(request)}
    return verbs


@pytest.fixture
def staff_by_group(request: pytest.FixtureRequest) -> dict[str, User]:
    return {group: request.getfixturevalue(fixture) for group, fixture in GROUPS.items()}


def test_every_registered_screen_has_a_row_in_the_matrix() -> None:
    assert sorted(model._meta.label for model in admin.site._registry) == sorted(EXPECTED)


def test_each_group_may_do_exactly_what_the_matrix_says(staff_by_group: dict[str, User]) -> None:
    actual = {
        model._meta.label: {group: _may(model_admin, user) for group, user in staff_by_group.items()}
        for model, model_admin in admin.site._registry.items()
    }
    assert actual == EXPECTED


@pytest.mark.parametrize("label", ["customers.Customer", "customers.Contact"])
def test_the_privacy_officer_changes_who_signs_in_and_nothing_else(
    privacy_officer: User, kari: Contact, label: str
) -> None:
    record: Any = kari if label == "customers.Contact" else kari.customer
    model_admin = admin.site._registry[type(record)]
    request = _request_as(privacy_officer)
    form_fields = model_admin.get_form(request, record, change=True).base_fields
    editable = {name for name in form_fields if name not in model_admin.get_readonly_fields(request, record)}
    assert editable == {name for (model, name), groups in EDITABLE_BY.items() if model == label and groups}


def test_every_field_that_lets_someone_sign_in_is_in_the_matrix() -> None:
    assert sorted(EDITABLE_BY) == sorted(
        (rules.model._meta.label, name) for rules in SIGN_IN_FIELDS.values() for name in rules.names
    )


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("field", sorted(EDITABLE_BY), ids=lambda field: ".".join(field))
def test_each_group_may_edit_exactly_the_sign_in_fields_the_matrix_says(
    staff_by_group: dict[str, User], kari: Contact, group: str, field: tuple[str, str]
) -> None:
    label, name = field
    record: Any = kari if label == "customers.Contact" else kari.customer
    model_admin = admin.site._registry[type(record)]
    request = _request_as(staff_by_group[group])
    editable = (
        model_admin.has_change_permission(request, record)
        and name in model_admin.get_form(request, record, change=True).base_fields
        and name not in model_admin.get_readonly_fields(request, record)
    )
    assert editable == (group in EDITABLE_BY[field])


@pytest.mark.parametrize("group", GROUPS)
def test_no_group_gives_access_in_the_contacts_inline(
    staff_by_group: dict[str, User], alice: Customer, group: str
) -> None:
    request = _request_as(staff_by_group[group])
    inlines = admin.site._registry[Customer].get_inline_instances(request, alice)
    editable = [
        inline
        for inline in inlines
        if inline.model is Contact
        and inline.has_change_permission(request, alice)
        and "portal_access" not in inline.get_readonly_fields(request, alice)
    ]
    # Support may edit contacts there, but not their access; the Privacy officer changes nothing but
    # who signs in, which it does on the contact's own screen.
    assert editable == []
