"""Staff reach customer data only with two-factor authentication, and then only what their group allows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers import services
from tests.factories import CorrespondenceFactory, CustomerFactory, InvoiceFactory
from tests.security.sign_in import (
    authenticator_app_of,
    code_for_secret,
    current_code,
    sign_in_with_second_factor,
)

pytestmark = pytest.mark.django_db

PASSWORD = "korrekt-hest-batteri-stift"
STAFF_API = "/api/v1/staff/access-requests/"


@pytest.fixture
def records() -> dict[str, Any]:
    customer = CustomerFactory.create(name="Hemmelig Kunde AS", email="post@hemmelig.example.no")
    invoice = services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2026, 1, 15)
    )
    return {
        "customer": customer,
        "invoice": invoice,
        "correspondence": CorrespondenceFactory.create(customer=customer),
    }


def _with_password(user: Any) -> Any:
    user.email = f"{user.username}@wphosting.example"
    user.set_password(PASSWORD)
    user.save()
    return user


# --- Without two-factor authentication: nothing -----------------------------------------------


@pytest.mark.parametrize("persona", ["support_user", "billing_user", "privacy_officer", "superuser"])
def test_staff_without_an_authenticator_app_are_sent_to_set_one_up_and_see_no_customer(
    client: Client, persona: str, records: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for url in [
        reverse("admin:index"),
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_change", args=[records["customer"].pk]),
        reverse("admin:customers_invoice_change", args=[records["invoice"].pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("mfa_activate_totp")), url
        assert b"Hemmelig" not in response.content


@pytest.mark.parametrize("persona", ["privacy_officer", "superuser"])
def test_staff_without_two_factor_get_no_data_from_the_staff_api(
    client: Client, persona: str, records: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    client.force_login(request.getfixturevalue(persona))
    response = client.get(STAFF_API, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert response.json() == {"detail": "Staff must sign in with two-factor authentication first."}
    norwegian = client.get(STAFF_API)  # the default language
    assert norwegian.json() == {"detail": "Ansatte må først logge inn med tofaktorautentisering."}
    assert "no-store" in response["Cache-Control"]


def test_an_authenticator_app_is_not_enough_when_this_session_did_not_use_it(
    client: Client, superuser: Any, records: dict[str, Any]
) -> None:
    authenticator_app_of(superuser)
    client.force_login(superuser)  # a session that signed in with the password only
    response = client.get(reverse("admin:customers_customer_change", args=[records["customer"].pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert client.get(STAFF_API).status_code == 403


def test_a_customer_is_not_asked_for_two_factor(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    response = client.get(reverse("access_requests:my_data"))
    assert response.status_code == 200


# --- The real sign-in: password at /admin/login/, then the authenticator app ---------------------


def test_staff_sign_in_at_the_admin_with_password_then_code(client: Client, superuser: Any) -> None:
    user = _with_password(superuser)
    authenticator = authenticator_app_of(user)

    response = client.get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("admin:login"))
    login_page = client.get(response["Location"])
    assert login_page.status_code == 200
    assert b'name="password"' in login_page.content

    response = client.post(
        f"{reverse('admin:login')}?next=/admin/", {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in before the code

    response = client.post(reverse("mfa_authenticate"), {"code": current_code(authenticator)})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_staff_without_an_app_set_it_up_then_confirm_a_code_and_reach_the_admin(
    client: Client, support_user: Any, records: dict[str, Any]
) -> None:
    """A new employee's first sign-in: the password once, the authenticator app set up with its
    code (which is this sign-in's second factor), the recovery codes with a way on, the admin. No
    second password prompt, no second code prompt."""
    user = _with_password(support_user)
    prompts: list[str] = []
    with time_machine.travel(timezone.now(), tick=False):
        prompts.append("password")
        response = client.post(reverse("admin:login"), {"login": user.email, "password": PASSWORD})
        assert response.status_code == 302
        change_page = reverse("admin:customers_customer_change", args=[records["customer"].pk])
        assert client.get(change_page)["Location"].startswith(reverse("mfa_activate_totp"))
        activation_page = client.get(reverse("mfa_activate_totp"))
        assert activation_page.status_code == 200  # no password asked again
        secret = activation_page.context["form"].secret  # what the QR code holds
        assert secret in activation_page.content.decode()  # readable and copyable, not cut off
        prompts.append("authenticator code")
        response = client.post(reverse("mfa_activate_totp"), {"code": code_for_secret(secret)})
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_view_recovery_codes")
        assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        codes_page = client.get(response["Location"])
        assert codes_page.status_code == 200  # the codes, with no prompt in front of them
        assert reverse("mfa_download_recovery_codes") in codes_page.content.decode()
        assert f'href="{reverse("admin:index")}"' in codes_page.content.decode()  # the way on
        page = client.get(change_page)
        assert page.status_code == 200
        assert b"Hemmelig Kunde AS" in page.content
    assert prompts == ["password", "authenticator code"]


def test_an_app_set_up_a_while_after_signing_in_asks_for_the_password_first(
    client: Client, support_user: Any
) -> None:
    user = _with_password(support_user)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.post(reverse("admin:login"), {"login": user.email, "password": PASSWORD})
    with time_machine.travel(start + timezone.timedelta(minutes=6), tick=False):
        assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(
            reverse("account_reauthenticate")
        )


def test_a_wrong_code_does_not_sign_staff_in(client: Client, superuser: Any) -> None:
    user = _with_password(superuser)
    authenticator_app_of(user)
    client.post(reverse("admin:login"), {"login": user.email, "password": PASSWORD})
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert client.get(reverse("admin:index")).status_code == 302


# --- With two-factor authentication: exactly what the group allows --------------------------------

# (persona, URL name, uses the customer / invoice / correspondence id, expected status): the groups'
# expectations of tests/portal/test_staff_groups.py, now with a second factor.
GROUP_EXPECTATIONS = [
    ("support_user", "admin:customers_customer_changelist", None, 200),
    ("support_user", "admin:customers_customer_change", "customer", 200),
    ("support_user", "admin:customers_correspondence_changelist", None, 200),
    ("support_user", "admin:customers_invoice_changelist", None, 403),
    ("support_user", "admin:customers_payment_changelist", None, 403),
    ("support_user", "admin:customers_customer_delete", "customer", 403),
    ("support_user", "admin:customers_customer_add", None, 403),
    ("support_user", "admin:audit_auditevent_changelist", None, 403),
    ("billing_user", "admin:customers_invoice_changelist", None, 200),
    ("billing_user", "admin:customers_invoice_change", "invoice", 200),
    ("billing_user", "admin:customers_payment_add", None, 200),
    ("billing_user", "admin:customers_correspondence_changelist", None, 403),
    ("billing_user", "admin:customers_customer_add", None, 403),
    ("billing_user", "admin:audit_auditevent_changelist", None, 403),
    ("privacy_officer", "admin:customers_customer_changelist", None, 200),
    ("privacy_officer", "admin:customers_invoice_changelist", None, 200),
    ("privacy_officer", "admin:customers_correspondence_change", "correspondence", 200),
    ("privacy_officer", "admin:customers_invoice_add", None, 403),
    ("privacy_officer", "admin:audit_auditevent_changelist", None, 200),
    ("superuser", "admin:customers_customer_change", "customer", 200),
    ("superuser", "admin:customers_invoice_change", "invoice", 200),
    ("superuser", "admin:audit_auditevent_changelist", None, 200),
]


@pytest.mark.parametrize(("persona", "name", "record", "expected"), GROUP_EXPECTATIONS)
def test_with_two_factor_each_group_sees_what_it_should(
    client: Client,
    records: dict[str, Any],
    request: pytest.FixtureRequest,
    persona: str,
    name: str,
    record: str | None,
    expected: int,
) -> None:
    sign_in_with_second_factor(client, request.getfixturevalue(persona))
    args = [records[record].pk] if record else []
    assert client.get(reverse(name, args=args)).status_code == expected


@pytest.mark.parametrize(
    ("persona", "expected"), [("support_user", 403), ("privacy_officer", 200), ("superuser", 200)]
)
def test_with_two_factor_the_staff_api_answers_by_permission(
    client: Client, request: pytest.FixtureRequest, persona: str, expected: int
) -> None:
    sign_in_with_second_factor(client, request.getfixturevalue(persona))
    assert client.get(STAFF_API).status_code == expected
