"""One door per person: customers by e-mail code, staff by password and authenticator app.

The doors are derived, not remembered: the routes are read from the URL resolver (and allauth's own
URL configuration), so a route added later, by the portal or by an allauth upgrade, is either a door
of portal/doors.py with its test of who may use it, a staff page of the admin that sends everyone
else to the staff sign-in, or not routed at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import allauth.urls
import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from customers.demo import CUSTOMER_USERNAME, _ensure_logins
from customers.models import Customer
from portal.doors import DOORS, DOORS_BY_NAME, Audience
from tests.access_requests.test_sign_in import has_code, sign_in
from tests.factories import ContactFactory, CustomerFactory
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

PASSWORD = "korrekt-hest-batteri-stift"
ENGLISH = {"Accept-Language": "en"}


# --- The routes, as the resolver lists them --------------------------------------------------------


@dataclass(frozen=True)
class Route:
    path: str  # as the resolver spells it, parameters included
    name: str | None  # namespaced
    callback: Any

    def url(self) -> str:
        """The route with each parameter filled (an id that exists nowhere)."""
        filled = re.sub(r"<(?:\w+:)?\w+>", "1", self.path)
        filled = re.sub(r"\(\?P<\w+>[^)]*\)", "1", filled)
        return "/" + filled.lstrip("^").replace("$", "").replace("\\Z", "")


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        path = prefix + str(entry.pattern).lstrip("^")
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, path, inner)
        elif isinstance(entry, URLPattern):
            yield Route(path, f"{namespace}{entry.name}" if entry.name else None, entry.callback)


def portal_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def allauth_routes() -> list[Route]:
    """Every route allauth itself would offer under /accounts/ with the portal's settings."""
    return list(_walk(allauth.urls.urlpatterns, "accounts/"))


def _is_admin_page(route: Route) -> bool:
    # AdminSite.get_urls and ModelAdmin.get_urls wrap each view in `admin_view` (staff only, or off
    # to the staff sign-in) and mark the wrapper with its site or ModelAdmin.
    return hasattr(route.callback, "admin_site") or hasattr(route.callback, "model_admin")


def _signs_in(route: Route) -> bool:
    module = getattr(route.callback, "__module__", "") or ""
    view_class = getattr(route.callback, "view_class", None)
    if view_class is not None:
        module = " ".join(cls.__module__ for cls in view_class.__mro__)
    return "allauth" in module or "django.contrib.auth.views" in module


ADMIN_PAGES = [
    route for route in portal_routes() if route.path.startswith("admin/") and route.name not in DOORS_BY_NAME
]
UNROUTED_ALLAUTH = [route for route in allauth_routes() if route.name not in DOORS_BY_NAME]


def test_every_route_under_accounts_is_a_door() -> None:
    routes = [route for route in portal_routes() if route.path.startswith("accounts/")]
    assert routes
    assert [route.name for route in routes if route.name not in DOORS_BY_NAME] == []
    assert {route.name for route in routes} == {door.name for door in DOORS if door.prefix == "accounts/"}


def test_every_route_under_admin_is_a_door_or_a_staff_page() -> None:
    # A staff page is one that sends visitors and customers to the staff sign-in (tested for each
    # below); none of them is a sign-in view of allauth or django.contrib.auth.
    assert ADMIN_PAGES
    assert [route.path for route in ADMIN_PAGES if _signs_in(route)] == []
    # The ModelAdmins' and the site's own pages are wrapped in admin_view, which the admin marks.
    assert sum(_is_admin_page(route) for route in ADMIN_PAGES) > len(ADMIN_PAGES) // 2


def test_every_door_in_the_registry_is_routed_where_it_says() -> None:
    for door in DOORS:
        parameters = {"id": 1} if "<id>" in door.route else {}
        assert reverse(door.name, kwargs=parameters) == door.path.replace("<id>", "1"), door.name


def test_no_route_elsewhere_authenticates() -> None:
    elsewhere = [
        route.path
        for route in portal_routes()
        if not route.path.startswith(("accounts/", "admin/")) and _signs_in(route)
    ]
    assert elsewhere == []


def test_allauth_offers_routes_that_are_no_door() -> None:
    # The test below would pass vacuously if allauth offered nothing beyond the doors.
    names = {route.name for route in UNROUTED_ALLAUTH}
    assert {
        "account_set_password",
        "account_change_password",
        "account_reset_password",
    } <= names


@pytest.mark.parametrize("route", UNROUTED_ALLAUTH, ids=lambda route: route.name)
@pytest.mark.parametrize("method", ["get", "post"])
def test_allauths_other_routes_are_not_found(
    client: Client, alice: Customer, route: Route, method: str
) -> None:
    assert getattr(Client(), method)(route.url()).status_code == 404
    assert alice.user is not None
    client.force_login(alice.user)
    assert getattr(client, method)(route.url()).status_code == 404


@pytest.mark.parametrize("route", ADMIN_PAGES, ids=lambda route: route.path)
def test_admin_pages_send_visitors_and_customers_to_the_staff_sign_in(
    client: Client, alice: Customer, route: Route
) -> None:
    login = reverse("admin:login")
    response = Client().get(route.url())
    assert response.status_code == 302 and response["Location"].startswith(login)
    assert alice.user is not None
    client.force_login(alice.user)
    response = client.get(route.url())
    assert response.status_code == 302 and response["Location"].startswith(login)


# --- Who may use each door -------------------------------------------------------------------------

STAFF_DOORS = [door for door in DOORS if door.audience is Audience.STAFF]
CODE_DOORS = [door for door in DOORS if door.sends_code and door.name != "account_confirm_login_code"]


@pytest.fixture
def staff_with_password(support_user: User) -> User:
    support_user.email = "siri@wphosting.example"
    support_user.set_password(PASSWORD)
    support_user.save()
    return support_user


@pytest.mark.parametrize("door", STAFF_DOORS, ids=lambda door: door.name)
def test_a_signed_in_customer_finds_no_staff_door(client: Client, alice: Customer, door: Any) -> None:
    assert alice.user is not None
    client.force_login(alice.user)
    url = door.path.replace("<id>", str(alice.user.pk))
    for response in (client.get(url), client.post(url)):
        if door.prefix == "accounts/":
            assert response.status_code == 404
        else:  # the admin's: refused, or off to the admin, which sends her to the staff sign-in
            assert response.status_code in (302, 403)
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/")


@pytest.mark.parametrize(
    "door",
    [door for door in STAFF_DOORS if door.prefix == "accounts/" and door.name != "mfa_authenticate"],
    ids=lambda door: door.name,
)
def test_staff_signed_in_with_two_factor_reach_each_staff_door(
    client: Client, support_user: User, door: Any
) -> None:
    sign_in_with_second_factor(client, support_user)
    RecoveryCodes.activate(support_user)
    assert client.get(door.path).status_code in (200, 302)


@pytest.mark.parametrize("door", CODE_DOORS, ids=lambda door: door.name)
@pytest.mark.parametrize("persona", ["support_user", "privacy_officer", "superuser"])
@pytest.mark.parametrize("field", ["email", "login"])
def test_staff_never_receive_a_code(
    client: Client, door: Any, persona: str, field: str, request: pytest.FixtureRequest
) -> None:
    staff = request.getfixturevalue(persona)
    client.post(door.path, {field: staff.email})
    assert not any(has_code(message.body) for message in mail.outbox if staff.email in message.to)


@pytest.mark.parametrize("door", CODE_DOORS, ids=lambda door: door.name)
def test_a_customer_gets_a_code_at_each_code_door(client: Client, alice: Customer, door: Any) -> None:
    response = client.post(door.path, {"email": "alice@example.no"})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_confirm_login_code")
    assert [message.to for message in mail.outbox] == [["alice@example.no"]]
    assert has_code(mail.outbox[0].body)


@pytest.mark.parametrize("door", CODE_DOORS, ids=lambda door: door.name)
def test_an_address_staff_changed_away_from_gets_no_code(client: Client, alice: Customer, door: Any) -> None:
    sign_in(Client(), "alice@example.no")  # her user now has the address, in allauth's table too
    Customer.objects.filter(pk=alice.pk).update(email="alice.hansen@example.no")
    mail.outbox.clear()

    for field in ("email", "login"):
        client.post(door.path, {field: "alice@example.no"})

    assert not any(has_code(message.body) for message in mail.outbox)


def test_a_code_asked_for_before_the_address_changed_signs_nobody_in(client: Client, alice: Customer) -> None:
    client.post(reverse("account_request_login_code"), {"email": "alice@example.no"})
    code = next(
        match.group(1)
        for message in mail.outbox
        for match in [re.search(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", str(message.body), re.M)]
        if match
    )
    Customer.objects.filter(pk=alice.pk).update(email="alice.hansen@example.no")
    mail.outbox.clear()

    client.post(reverse("account_confirm_login_code"), {"action": "resend"})
    response = client.post(reverse("account_confirm_login_code"), {"code": code})

    assert response.status_code == 302 and response["Location"] != "/my-data/"
    assert client.get("/my-data/").status_code == 302
    assert not any(has_code(message.body) for message in mail.outbox)


def test_a_contacts_code_is_void_once_her_access_is_taken_away(client: Client) -> None:
    contact = ContactFactory.create(email="kari@berg.example.no", portal_access=True)
    client.post(reverse("account_request_login_code"), {"email": "kari@berg.example.no"})
    code = re.search(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", str(mail.outbox[-1].body), re.M)
    assert code is not None
    type(contact).objects.filter(pk=contact.pk).update(portal_access=False)

    client.post(reverse("account_confirm_login_code"), {"code": code.group(1)})

    assert client.get("/my-data/").status_code == 302


def test_signing_out_is_for_whoever_is_signed_in(client: Client, alice: Customer) -> None:
    assert alice.user is not None
    client.force_login(alice.user)
    assert client.get(reverse("account_logout")).status_code == 200  # asks first
    assert client.get("/my-data/").status_code == 200
    assert client.post(reverse("account_logout")).status_code == 302
    assert client.get("/my-data/").status_code == 302


@pytest.mark.parametrize("method", ["get", "post"])
def test_nobody_signs_up(client: Client, alice: Customer, support_user: User, method: str) -> None:
    url = reverse("account_signup")
    assert getattr(client, method)(url, {"email": "new@example.no"}).status_code == 404
    assert alice.user is not None
    client.force_login(alice.user)
    assert getattr(client, method)(url).status_code == 404
    sign_in_with_second_factor(client, support_user)
    assert getattr(client, method)(url).status_code == 404


def test_the_inactive_page_signs_nobody_in(client: Client) -> None:
    response = client.get(reverse("account_inactive"))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


# --- Staff: password and authenticator app at /admin/login/, nothing else --------------------------


def test_the_staff_sign_in_sends_no_code_without_a_password(
    client: Client, staff_with_password: User
) -> None:
    response = client.post(reverse("admin:login"), {"login": staff_with_password.email, "password": ""})
    assert response.status_code == 200
    assert mail.outbox == []
    assert "_auth_user_id" not in client.session


def test_a_customer_with_a_password_is_refused_at_the_staff_sign_in(client: Client, alice: Customer) -> None:
    # A password she may have set before customers lost them (written straight to the table).
    assert alice.user is not None
    User.objects.filter(pk=alice.user.pk).update(password=make_password(PASSWORD))

    response = client.post(
        reverse("admin:login"), {"login": "alice@example.no", "password": PASSWORD}, headers=ENGLISH
    )

    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_customer_who_had_a_password_loses_it_when_she_asks_for_a_code(
    client: Client, alice: Customer
) -> None:
    assert alice.user is not None
    User.objects.filter(pk=alice.user.pk).update(password=make_password(PASSWORD))
    client.post(reverse("account_request_login_code"), {"email": "alice@example.no"})
    alice.user.refresh_from_db()
    assert not alice.user.has_usable_password()


def test_a_customer_cannot_give_herself_a_password(client: Client, alice: Customer) -> None:
    assert alice.user is not None
    client.force_login(alice.user)
    for url in ("/accounts/password/set/", "/accounts/password/change/"):
        response = client.post(url, {"password1": PASSWORD, "password2": PASSWORD, "oldpassword": ""})
        assert response.status_code == 404
    alice.user.refresh_from_db()
    assert not alice.user.check_password(PASSWORD)


def test_staff_sign_in_with_password_then_code_still_works(client: Client, staff_with_password: User) -> None:
    from tests.security.sign_in import authenticator_app_of, current_code

    authenticator = authenticator_app_of(staff_with_password)
    response = client.post(reverse("admin:login"), {"login": staff_with_password.email, "password": PASSWORD})
    assert response["Location"] == reverse("mfa_authenticate")
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(authenticator)})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_superuser_cannot_give_a_customer_user_a_password(
    client: Client, alice: Customer, superuser: User
) -> None:
    sign_in_with_second_factor(client, superuser)
    assert alice.user is not None
    url = reverse("admin:auth_user_password_change", args=[alice.user.pk])
    assert client.get(url).status_code == 404
    response = client.post(url, {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})
    assert response.status_code == 404
    alice.user.refresh_from_db()
    assert not alice.user.check_password(PASSWORD)


def test_the_superuser_can_still_set_a_staff_users_password(
    client: Client, superuser: User, support_user: User
) -> None:
    sign_in_with_second_factor(client, superuser)
    url = reverse("admin:auth_user_password_change", args=[support_user.pk])
    assert client.get(url).status_code == 200


def test_the_seeded_demo_customer_has_no_password() -> None:
    customer = CustomerFactory.create(email="kunde@demo.example", user=None)
    _ensure_logins(portal_customer=customer)
    user = User.objects.get(username=CUSTOMER_USERNAME)
    assert not user.has_usable_password()


def test_a_demo_customer_seeded_with_the_old_password_loses_it() -> None:
    user = User.objects.create_user(username=CUSTOMER_USERNAME, password="demo-password-2026")
    customer = CustomerFactory.create(email="kunde@demo.example", user=user)
    _ensure_logins(portal_customer=customer)
    user.refresh_from_db()
    assert not user.has_usable_password()
