"""Property-based tests of the API from its own OpenAPI schema (schemathesis): whatever a signed-in
client sends, valid or not, the answer is never a server error, and what it documents it keeps.

The schema is read from the live /api/schema/ and every call goes through the portal's WSGI
application in this process, so the test database and the personas' sessions are the real ones.
Customer operations are called as Alice, staff operations as a case handler signed in with two
factors. The number of examples per operation is bounded to keep the run under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, settings

from access_requests.models import AccessRequest
from customers.models import Customer
from tests.access_requests.portal_fixtures import local_exports, make_ready_request, make_request
from tests.factories import UserFactory

__all__ = ["local_exports"]

EXAMPLES_PER_OPERATION = 25
CSRF_TOKEN = "schemathesisCsrfToken0123456789a"  # 32 characters, as Django's secret


def _portal_app() -> WSGIHandler:
    # Made under the settings the suite's requests run with (plain http, see tests/conftest.py):
    # SecurityMiddleware reads them once, when the handler is made at collection time.
    with override_settings(SECURE_SSL_REDIRECT=False):
        return WSGIHandler()


# The live schema, read through the application itself (schemathesis' lazy fixture loader does
# not work with pytest 9, so the schema is loaded when the module is collected).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", _portal_app())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
)


@pytest.fixture
def _requests_keep_the_test_transaction(db: None) -> Iterator[None]:
    """As Django's test client does: a finished request must not close the database connection,
    which would end the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def sessions(
    alice: Customer,
    bob: Customer,
    local_exports: Path,
    mfa_login: Any,
    _requests_keep_the_test_transaction: None,
) -> dict[str, dict[str, str]]:
    """Cookies of Alice (with a ready copy, and Bob's request next to hers) and of a case handler."""
    make_ready_request(alice)
    make_request(bob)
    alice_client = Client()
    assert alice.user is not None
    alice_client.force_login(alice.user)
    handler = UserFactory.create(username="hanne-handler", is_staff=True)
    handler.user_permissions.add(*Permission.objects.filter(content_type__app_label="access_requests"))
    staff_client = Client()
    mfa_login(staff_client, handler)
    return {
        persona: {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF_TOKEN}
        for persona, client in (("alice", alice_client), ("staff", staff_client))
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_never_answers_with_a_server_error(case: Any, sessions: dict[str, dict[str, str]]) -> None:
    persona = "staff" if case.path.startswith("/api/v1/staff/") else "alice"
    response = case.call(cookies=sessions[persona], headers={"X-CSRFToken": CSRF_TOKEN})
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.response_schema_conformance,
        ],
    )
    assert AccessRequest.objects.count() >= 2  # nothing the API accepts deletes a request
