"""Small leaks an attacker found: the address in the messages cookie, analytics ids in digits
that are not ASCII, and /healthz telling anyone where Redis is and what drifted."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from processors.services import CLIENT_ID, normalize_client_id
from tests.security.sign_in import sign_in_with_second_factor

HEALTHZ_TOKEN = "healthz-token-for-the-tests-only"


def test_asking_for_a_code_puts_no_address_in_a_cookie(client: Client, alice: Customer) -> None:
    response = client.post(reverse("account_request_login_code"), {"email": "alice@example.no"})
    assert response.status_code == 302
    # The "a code was sent to …" message lives in the session (PostgreSQL), not in the browser.
    assert "messages" not in response.cookies
    assert "alice" not in str(response.cookies)
    page = client.get(response["Location"]).content.decode()
    assert "alice@example.no" in page  # the customer still reads where the code went


@pytest.mark.parametrize(
    "pasted",
    [
        "١٢٣٤٥٦٧٨٩٠.١٧١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "GA1.1.１２３４５６７８９０.１７１２３４５６７８",  # fullwidth digits
        "1234567890.1712345678\n",  # a trailing newline is not part of an id
        "GA١.1.1234567890.1712345678",
    ],
)
def test_an_analytics_id_is_ascii_digits_only(pasted: str) -> None:
    if pasted.endswith("\n"):
        # What the customer pastes is stripped first; the pattern itself must not accept a newline.
        assert CLIENT_ID.match(pasted) is None
        return
    with pytest.raises(ValidationError):
        normalize_client_id(pasted)


def test_an_ascii_analytics_id_is_still_accepted() -> None:
    assert normalize_client_id(" GA1.1.1234567890.1712345678 ") == "1234567890.1712345678"


# --- /healthz -------------------------------------------------------------------------------------


@pytest.fixture
def healthz_token(settings: Any) -> str:
    settings.HEALTHZ_TOKEN = HEALTHZ_TOKEN
    return HEALTHZ_TOKEN


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["application/json", "text/plain", "text/html", "*/*"])
def test_anyone_learns_only_the_status(client: Client, healthz_token: str, accept: str) -> None:
    response = client.get("/healthz", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?format=json", "?format=text", "?format=atom", "?format=openmetrics"])
def test_no_format_tells_anyone_more(client: Client, healthz_token: str, query: str) -> None:
    response = client.get(f"/healthz{query}")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_an_outage_tells_anyone_only_that_the_portal_is_unavailable(
    client: Client, settings: Any, healthz_token: str
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/7"  # the discard port: nothing listens there
    response = client.get("/healthz", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"127.0.0.1" not in response.content and b"Redis" not in response.content


@pytest.mark.django_db
def test_a_wrong_token_is_anyone(client: Client, healthz_token: str) -> None:
    response = client.get("/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION="Bearer wrong")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_no_token_configured_means_no_token_opens_the_details(client: Client, settings: Any) -> None:
    settings.HEALTHZ_TOKEN = ""
    response = client.get("/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION="Bearer ")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_the_configured_token_shows_each_check(client: Client, healthz_token: str) -> None:
    response = client.get(
        "/healthz", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}"
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2 and all(value == "OK" for value in body.values())


def test_staff_signed_in_with_two_factor_see_each_check(client: Client, support_user: Any) -> None:
    sign_in_with_second_factor(client, support_user)
    body = client.get("/healthz", HTTP_ACCEPT="application/json").json()
    assert len(body) == 2 and all(value == "OK" for value in body.values())


def test_a_customer_learns_only_the_status(client: Client, alice: Customer) -> None:
    assert alice.user is not None
    client.force_login(alice.user)
    assert client.get("/healthz", HTTP_ACCEPT="application/json").json() == {"status": "ok"}
