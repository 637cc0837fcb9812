"""Every HTML page carries the Content-Security-Policy and the security headers; pages with personal
data are never cached; in production, http goes to https and the cookies are Secure."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def _directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def assert_secure_html(response: Any) -> None:
    assert response["Content-Type"].startswith("text/html")
    csp = _directives(response)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert csp["script-src"][0] == "'self'"
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Request-ID"]
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html)
    assert not EVENT_HANDLER.search(html), EVENT_HANDLER.search(html)


def assert_not_stored(response: Any) -> None:
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def _anonymous(url: str) -> Callable[[Client, Any], Any]:
    return lambda client, request: client.get(url)


def _as_customer(url: str) -> Callable[[Client, Any], Any]:
    def get(client: Client, request: Any) -> Any:
        client.force_login(request.getfixturevalue("alice").user)
        return client.get(url)

    return get


def _as_staff(url_name: str, *, record: bool = False) -> Callable[[Client, Any], Any]:
    def get(client: Client, request: Any) -> Any:
        sign_in_with_second_factor(client, request.getfixturevalue("superuser"))
        args = [request.getfixturevalue("alice").pk] if record else []
        return client.get(reverse(url_name, args=args))

    return get


PAGES: dict[str, tuple[Callable[[Client, Any], Any], int, bool]] = {
    # name: (how to get it, status, holds personal data)
    "home": (_anonymous("/"), 200, False),
    "privacy policy": (_anonymous("/privacy/"), 200, False),
    "API documentation": (_anonymous("/api/docs/"), 200, True),
    "privacy-free 404": (_anonymous("/no-such-page/"), 404, False),
    "customer sign-in": (_anonymous("/accounts/login/"), 200, True),
    "code request": (_anonymous("/accounts/login/code/"), 200, True),
    "staff sign-in": (_anonymous("/admin/login/"), 200, True),
    "my data": (_as_customer("/my-data/"), 200, True),
    "my analytics id": (_as_customer("/my-data/analytics/"), 200, True),
    "customer's 404": (_as_customer("/no-such-page/"), 404, True),
    "admin index": (_as_staff("admin:index"), 200, True),
    "customer changelist": (_as_staff("admin:customers_customer_changelist"), 200, True),
    "customer change page": (_as_staff("admin:customers_customer_change", record=True), 200, True),
    "audit trail": (_as_staff("admin:audit_auditevent_changelist"), 200, True),
    "two-factor setup": (_as_staff("mfa_index"), 200, True),  # staff only: customers get 404
}


@pytest.mark.parametrize("page", PAGES)
def test_every_html_page_carries_the_csp_and_security_headers(
    client: Client, page: str, request: pytest.FixtureRequest
) -> None:
    get, status, _personal = PAGES[page]
    response = get(client, request)
    assert response.status_code == status
    assert_secure_html(response)


@pytest.mark.parametrize("page", [name for name, (_get, _status, personal) in PAGES.items() if personal])
def test_pages_with_personal_data_are_never_stored(
    client: Client, page: str, request: pytest.FixtureRequest
) -> None:
    get, _status, _personal = PAGES[page]
    assert_not_stored(get(client, request))


def test_the_public_front_page_may_be_cached(client: Client) -> None:
    assert "no-store" not in client.get("/").get("Cache-Control", "")


def test_the_api_is_never_stored(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    response = client.get("/api/v1/access-requests/")
    assert response.status_code == 200
    assert_not_stored(response)
    assert "Content-Security-Policy" in response


def test_error_pages_carry_the_headers(client: Client, alice: Any, support_user: Any) -> None:
    client.force_login(alice.user)
    forbidden = client.get(reverse("admin:login"))  # a signed-in customer at the staff sign-in
    assert forbidden.status_code == 403
    assert_secure_html(forbidden)
    assert "No access" in forbidden.content.decode() or "Ingen tilgang" in forbidden.content.decode()


def test_the_admin_pages_carry_the_nonce_of_the_header(client: Client, superuser: Any) -> None:
    sign_in_with_second_factor(client, superuser)
    response = client.get(reverse("admin:customers_customer_changelist"))
    nonce = next(value for value in _directives(response)["script-src"] if value.startswith("'nonce-"))
    assert nonce in _directives(response)["style-src"]
    assert f'nonce="{nonce[7:-1]}"' in response.content.decode()


# --- Production transport (SECURE_TRANSPORT on) --------------------------------------------------


def test_production_sends_hsts_on_https(client: Client, settings: Any) -> None:
    assert settings.SECURE_HSTS_SECONDS == 365 * 24 * 3600
    response = client.get("/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_production_redirects_http_to_https_but_not_the_health_check(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/my-data/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/my-data/"
    assert client.get("/healthz").status_code != 301


def test_production_cookies_are_secure_http_only_and_same_site(
    client: Client, settings: Any, support_user: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    support_user.email = "siri@wphosting.example"
    support_user.set_password("korrekt-hest-batteri-stift")
    support_user.save()
    page = client.get(reverse("admin:login"), secure=True)
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    signed_in = client.post(
        reverse("admin:login"),
        {"login": support_user.email, "password": "korrekt-hest-batteri-stift"},
        secure=True,
    )
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert not session["max-age"] and not session["expires"]  # gone when the browser closes


def test_a_safe_request_id_from_the_proxy_is_kept_and_an_unsafe_one_replaced(client: Client) -> None:
    assert client.get("/", headers={"X-Request-ID": "req-1234abcd"})["X-Request-ID"] == "req-1234abcd"
    replaced = client.get("/", headers={"X-Request-ID": 'x" injected=1'})["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
