"""Bob never reaches Alice's data, and nobody reaches anyone's without signing in: for every
customer-facing page and API route, as the URL resolver lists them, with every HTTP method.

The routes are read from `get_resolver()` at collection time, so a route added later is tested
without anyone remembering to: a route whose path parameters this module cannot fill fails.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from access_requests.models import AccessRequest
from customers.models import Customer
from tests.access_requests.portal_fixtures import (
    alice_client,
    bob_client,
    local_exports,
    make_ready_request,
)
from tests.factories import UserFactory

__all__ = ["alice_client", "bob_client", "local_exports"]

CUSTOMER_FACING = ("my-data/", "api/v1/")
METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
LOGIN_URL = "/accounts/login/"


@dataclass(frozen=True)
class Route:
    path: str  # the route as the resolver spells it, with its parameters
    name: str | None  # namespaced, for reverse()
    parameters: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.path.startswith("api/")

    @property
    def is_staff_only(self) -> bool:
        return "/staff/" in self.path


def _parameters(pattern: Any) -> list[str]:
    converters = getattr(pattern, "converters", None)
    if converters is not None and hasattr(pattern, "_route"):
        return list(converters)
    return list(pattern.regex.groupindex)


def _readable(pattern: Any) -> str:
    return str(pattern).lstrip("^").rstrip("$").replace("\\Z", "")


def customer_facing_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns: list[Any], prefix: str, namespace: str, parameters: list[str]) -> None:
        for entry in patterns:
            path = prefix + _readable(entry.pattern)
            found = parameters + _parameters(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, path, inner, found)
            elif isinstance(entry, URLPattern) and path.startswith(CUSTOMER_FACING):
                name = f"{namespace}{entry.name}" if entry.name else None
                routes.append(Route(path, name, tuple(found)))

    walk(get_resolver().url_patterns, "", "", [])
    return routes


ROUTES = customer_facing_routes()


def test_the_enumeration_finds_the_pages_and_the_api() -> None:
    paths = {route.path for route in ROUTES}
    assert {
        "my-data/",
        "my-data/requests/",
        "my-data/requests/<uuid:request_id>/download",
        "api/v1/access-requests/",
        "api/v1/access-requests/(?P<request_id>[^/]+)/download-link/",
        "api/v1/staff/access-requests/(?P<request_id>[^/]+)/retry/",
    } <= paths


@pytest.fixture
def alice_ready(alice: Customer, local_exports: Path) -> AccessRequest:
    return make_ready_request(alice)


@pytest.fixture
def case_handler_client(db: None, mfa_login: Any) -> Client:
    user = UserFactory.create(username="hanne-handler", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="access_requests"))
    client = Client()
    mfa_login(client, user)
    return client


def url_for(route: Route, values: dict[str, Any]) -> str:
    if route.name is None:
        pytest.fail(f"route {route.path} has no name: name it so the isolation matrix can reach it")
    unknown = [name for name in route.parameters if name not in values]
    if unknown:
        pytest.fail(
            f"route {route.path} takes {', '.join(unknown)}, which test_isolation cannot fill: "
            "teach `values_for` in this module what Alice owns there"
        )
    return reverse(route.name, kwargs={name: values[name] for name in route.parameters})


def values_for(alice_request: AccessRequest) -> dict[str, Any]:
    """Path parameters filled with Alice's objects."""
    return {"request_id": alice_request.pk}


def call(client: Client, method: str, url: str) -> Any:
    return getattr(client, method)(url)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_someone_not_signed_in_is_sent_to_sign_in(
    client: Client, route: Route, alice_ready: AccessRequest
) -> None:
    url = url_for(route, values_for(alice_ready))
    for method in METHODS:
        response = call(client, method, url)
        if route.is_api:
            assert response.status_code == 401, (method, url, response.status_code)
            assert response["WWW-Authenticate"]
        else:
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith(f"{LOGIN_URL}?next="), (method, url)


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.parameters], ids=lambda route: route.path
)
def test_bob_gets_404_for_alices_objects(
    alice_client: Client,
    bob_client: Client,
    case_handler_client: Client,
    route: Route,
    alice_ready: AccessRequest,
) -> None:
    url = url_for(route, values_for(alice_ready))
    owner = case_handler_client if route.is_staff_only else alice_client
    # The methods the route serves: what its rightful user is not told is "not allowed".
    served = [method for method in METHODS if call(owner, method, url).status_code != 405]
    assert served, f"{url} serves no method at all"
    for method in METHODS:
        # What the route serves is 404 for Bob; what it does not may be 405 or, where the access
        # check comes first (the staff API), 404: neither says anything about Alice.
        expected = (404,) if method in served else (404, 405)
        assert call(bob_client, method, url).status_code in expected, (method, url)
    assert alice_ready.pk == AccessRequest.objects.get(pk=alice_ready.pk).pk  # still there, still hers


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.parameters], ids=lambda route: route.path
)
def test_random_ids_are_404_for_everyone(
    alice_client: Client, bob_client: Client, route: Route, alice_ready: AccessRequest
) -> None:
    url = url_for(route, {name: uuid.uuid4() for name in route.parameters})
    for client in (alice_client, bob_client):
        for method in METHODS:
            assert call(client, method, url).status_code in (404, 405), (method, url)


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if not route.parameters], ids=lambda route: route.path
)
def test_bob_sees_only_his_own_on_routes_without_ids(
    bob_client: Client, route: Route, alice: Customer, alice_ready: AccessRequest
) -> None:
    url = url_for(route, {})
    alice_markers = [str(alice_ready.pk), alice.name, alice.email, str(alice_ready.pk)[:8]]
    for method in METHODS:
        response = call(bob_client, method, url)
        assert response.status_code < 500, (method, url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        for marker in alice_markers:
            assert marker not in text, (method, url, marker)
        if route.is_staff_only:
            assert response.status_code in (404, 405), (method, url)


def test_the_matrix_covers_every_route_with_parameters_it_can_fill() -> None:
    fillable = {"request_id"}
    for route in ROUTES:
        assert set(route.parameters) <= fillable, route.path
        assert route.name, route.path
        assert re.match(r"^(my-data|api/v1)/", route.path)
