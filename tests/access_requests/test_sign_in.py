"""Customers sign in without a password: their e-mail address, then a one-time code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Contact, Customer
from tests.factories import ContactFactory, CustomerFactory, UserFactory

REQUEST_CODE = reverse("account_request_login_code")
CONFIRM_CODE = reverse("account_confirm_login_code")
MY_DATA = "/my-data/"
# A line of the e-mail that holds only the code (allauth's format: e.g. "VKPG-TWSV").
CODE_LINE = re.compile(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", re.MULTILINE)


def has_code(body: object) -> bool:
    return CODE_LINE.search(str(body)) is not None


def ask_for_code(client: Client, email: str) -> str:
    """Ask for a code; return the page the customer lands on next."""
    response = client.post(REQUEST_CODE, {"email": email})
    assert response.status_code == 302, response.content.decode()
    return response["Location"]


def code_sent_to(email: str) -> str:
    codes = [
        match.group(1)
        for message in mail.outbox
        if email.lower() in [address.lower() for address in message.to]
        for match in [CODE_LINE.search(str(message.body))]
        if match
    ]
    assert codes, f"no sign-in code was sent to {email}"
    return codes[-1]


def sign_in(client: Client, email: str) -> None:
    ask_for_code(client, email)
    response = client.post(CONFIRM_CODE, {"code": code_sent_to(email)})
    assert response.status_code == 302
    assert response["Location"] == MY_DATA


@pytest.fixture
def berg_as(db: None) -> Customer:
    """An organisation customer; its accountant Kari may use the portal, its developer Ola may not."""
    customer = CustomerFactory.create(name="Berg Regnskap AS", email="post@berg-regnskap.example.no")
    ContactFactory.create(
        customer=customer, name="Kari Berg", email="kari@berg-regnskap.example.no", portal_access=True
    )
    ContactFactory.create(customer=customer, name="Ola Utvikler", email="ola@berg-regnskap.example.no")
    return customer


def test_the_sign_in_page_asks_only_for_the_email_and_sends_a_code(client: Client, db: None) -> None:
    response = client.get(reverse("account_login"))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'action="{REQUEST_CODE}"' in page
    assert 'name="email"' in page
    assert 'type="password"' not in page


def test_known_and_unknown_addresses_get_the_same_answer(alice: Customer) -> None:
    known, unknown = Client(), Client()
    known_next = ask_for_code(known, "alice@example.no")
    unknown_next = ask_for_code(unknown, "nobody@example.no")
    assert known_next == unknown_next == CONFIRM_CODE

    known_page = known.get(known_next).content.decode().replace("alice@example.no", "ADDRESS")
    unknown_page = unknown.get(unknown_next).content.decode().replace("nobody@example.no", "ADDRESS")
    strip_tokens = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip_tokens.sub("", known_page) == strip_tokens.sub("", unknown_page)
    # Only the owner of a known address receives a code; the other hears that nothing was found.
    assert [message.to for message in mail.outbox] == [["alice@example.no"], ["nobody@example.no"]]
    assert has_code(mail.outbox[0].body)
    assert not has_code(mail.outbox[1].body)


def test_a_customer_without_a_sign_in_gets_one_linked_to_them(client: Client, db: None) -> None:
    customer = CustomerFactory.create(name="Fjord Design AS", email="Post@Fjord-Design.example.no", user=None)

    sign_in(client, "post@fjord-design.example.no")

    customer.refresh_from_db()
    assert customer.user is not None
    assert customer.user.username == f"customer-{customer.pk}"
    assert not customer.user.has_usable_password()
    assert EmailAddress.objects.filter(
        user=customer.user, email="post@fjord-design.example.no", verified=True, primary=True
    ).exists()
    assert "Fjord Design AS" in client.get(MY_DATA).content.decode()


def test_the_address_is_matched_whatever_its_case(client: Client, alice: Customer) -> None:
    sign_in(client, "ALICE@Example.NO")
    assert int(client.session["_auth_user_id"]) == alice.user.pk


def test_signing_in_twice_uses_the_same_user(alice: Customer) -> None:
    sign_in(Client(), "alice@example.no")
    sign_in(Client(), "alice@example.no")
    alice.refresh_from_db()
    assert alice.user.username == "alice"
    assert EmailAddress.objects.filter(user=alice.user).count() == 1


def test_a_contact_with_portal_access_sees_the_organisations_data(client: Client, berg_as: Customer) -> None:
    sign_in(client, "kari@berg-regnskap.example.no")

    kari = Contact.objects.get(name="Kari Berg")
    assert kari.user is not None and kari.user.username == f"contact-{kari.pk}"
    page = client.get(MY_DATA)
    assert page.status_code == 200
    assert "Berg Regnskap AS" in page.content.decode()


def test_a_contact_without_portal_access_gets_no_code(client: Client, berg_as: Customer) -> None:
    assert ask_for_code(client, "ola@berg-regnskap.example.no") == CONFIRM_CODE
    with pytest.raises(AssertionError, match="no sign-in code"):
        code_sent_to("ola@berg-regnskap.example.no")
    assert Contact.objects.get(name="Ola Utvikler").user is None
    assert client.post(CONFIRM_CODE, {"code": "ABC123"}).status_code in (200, 302)
    assert client.get(MY_DATA).status_code == 302  # still not signed in


def test_revoking_a_contacts_access_takes_effect_at_once(client: Client, berg_as: Customer) -> None:
    sign_in(client, "kari@berg-regnskap.example.no")
    Contact.objects.filter(name="Kari Berg").update(portal_access=False)
    assert client.get(MY_DATA).status_code == 404
    ask_for_code(Client(), "kari@berg-regnskap.example.no")
    assert len(mail.outbox) == 2 and not has_code(mail.outbox[-1].body)


def test_staff_get_no_code_here(client: Client, support_user: object) -> None:
    ask_for_code(client, "siri-support@example.no")
    assert not has_code(mail.outbox[-1].body)


def test_a_customer_linked_to_a_staff_user_gets_no_code(client: Client, db: None) -> None:
    staff = UserFactory.create(username="employee", is_staff=True)
    CustomerFactory.create(email="employee@example.no", user=staff)
    ask_for_code(client, "employee@example.no")
    assert not has_code(mail.outbox[-1].body)


def test_an_address_shared_by_two_customers_signs_in_nobody(client: Client, db: None) -> None:
    CustomerFactory.create(email="shared@example.no", user=None)
    CustomerFactory.create(email="shared@example.no", user=None)
    ask_for_code(client, "shared@example.no")
    assert not has_code(mail.outbox[-1].body)


def test_a_code_expires(client: Client, alice: Customer) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ask_for_code(client, "alice@example.no")
        code = code_sent_to("alice@example.no")
        clock.shift(timedelta(minutes=11))
        response = client.post(CONFIRM_CODE, {"code": code})
    assert response.status_code == 302
    assert response["Location"] != MY_DATA
    assert client.get(MY_DATA).status_code == 302


def test_wrong_codes_are_limited(client: Client, alice: Customer) -> None:
    ask_for_code(client, "alice@example.no")
    code = code_sent_to("alice@example.no")
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    answers = [client.post(CONFIRM_CODE, {"code": wrong}).status_code for _attempt in range(3)]
    assert answers[:2] == [200, 200]  # the form again, with the error
    assert answers[2] == 302  # out of attempts: back to asking for a code
    assert client.post(CONFIRM_CODE, {"code": code})["Location"] != MY_DATA
    assert client.get(MY_DATA).status_code == 302


def test_asking_for_codes_is_rate_limited(client: Client, alice: Customer) -> None:
    for _attempt in range(3):
        ask_for_code(Client(), "alice@example.no")
    response = client.post(REQUEST_CODE, {"email": "alice@example.no"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200  # the form again, saying why
    assert 'class="errors"' in response.content.decode()
    assert len([m for m in mail.outbox if m.to == ["alice@example.no"]]) == 3


def test_the_code_email_is_the_portals(client: Client, alice: Customer) -> None:
    ask_for_code(client, "alice@example.no")
    message = mail.outbox[-1]
    assert message.subject.startswith("[WP Hosting] ")
    assert "sign up" not in message.body.lower()
