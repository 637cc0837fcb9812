"""The REST API: the signed-in customer's requests, and staff actions; errors are 4xx with a reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers.models import Customer
from tests.access_requests.portal_fixtures import (
    alice_client,
    alice_ready_request,
    alice_request,
    bob_client,
    local_exports,
    make_ready_request,
    make_request,
    s3_exports,
)
from tests.factories import UserFactory

__all__ = [
    "alice_client",
    "alice_ready_request",
    "alice_request",
    "bob_client",
    "local_exports",
    "s3_exports",
]

API = "/api/v1/access-requests/"
STAFF_API = "/api/v1/staff/access-requests/"


@pytest.fixture
def case_handler(db: None) -> Any:
    """Staff who handle access requests: may view and change them."""
    user = UserFactory.create(username="hanne-handler", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="access_requests",
            codename__in=["view_accessrequest", "change_accessrequest"],
        )
    )
    return user


@pytest.fixture
def staff_client(case_handler: Any, mfa_login: Any) -> Client:
    client = Client()
    mfa_login(client, case_handler)
    return client


# --- The customer's endpoints ------------------------------------------------------------------


def test_someone_not_signed_in_gets_401(client: Client, db: None) -> None:
    response = client.get(API)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Session")
    assert response.json()["detail"]


def test_alice_lists_only_her_own_requests(
    alice_client: Client, alice_request: AccessRequest, bob: Customer
) -> None:
    make_request(bob)
    response = alice_client.get(API)
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [str(alice_request.pk)]
    assert "no-store" in response["Cache-Control"]


def test_alice_asks_for_a_copy_and_a_second_time_hears_why_not(alice: Customer, alice_client: Client) -> None:
    created = alice_client.post(API)
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "received" and body["channel"] == "portal"
    assert body["page_url"].endswith(AccessRequest.objects.get(customer=alice).get_absolute_url())

    again = alice_client.post(API, HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 409
    assert again.json()["code"] == "already_open"
    assert "You already have a request" in again.json()["detail"]


def test_alice_reads_one_of_her_requests(alice_client: Client, alice_request: AccessRequest) -> None:
    response = alice_client.get(f"{API}{alice_request.pk}/")
    assert response.status_code == 200
    assert response.json()["due_on"] == alice_request.due_on.isoformat()
    assert response.json()["downloadable"] is False


@pytest.mark.parametrize("request_id", ["nonsense", "123", "8d5c3b52-6f0e-4d8a-9a51-2f1f4c7e9b10", "%20"])
def test_unknown_or_malformed_ids_are_404(alice_client: Client, request_id: str) -> None:
    response = alice_client.get(f"{API}{request_id}/")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_bob_gets_404_for_alices_request(bob_client: Client, alice_request: AccessRequest) -> None:
    assert bob_client.get(f"{API}{alice_request.pk}/").status_code == 404
    assert bob_client.post(f"{API}{alice_request.pk}/download-link/").status_code == 404


def test_download_link_with_local_storage_points_at_the_download_page(
    alice_client: Client, alice_ready_request: AccessRequest
) -> None:
    response = alice_client.post(f"{API}{alice_ready_request.pk}/download-link/")
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == f"http://testserver/my-data/requests/{alice_ready_request.pk}/download"
    assert body["expires_in"] is None
    assert body["filename"].endswith(".zip")
    # The page records the download when it is fetched, not the link.
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPORT_DOWNLOADED).exists()


def test_download_link_with_s3_is_presigned_for_at_most_five_minutes(
    alice: Customer, alice_client: Client, s3_exports: str
) -> None:
    access_request = make_ready_request(alice)
    response = alice_client.post(f"{API}{access_request.pk}/download-link/")
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 300
    assert "X-Amz-Expires=300" in body["url"]
    assert (
        AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPORT_DOWNLOADED, customer_id=alice.pk).count() == 1
    )


def test_download_link_before_the_copy_is_ready_is_409(
    alice_client: Client, alice_request: AccessRequest, local_exports: Path
) -> None:
    response = alice_client.post(f"{API}{alice_request.pk}/download-link/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_download_link_after_expiry_is_410(
    alice: Customer, alice_client: Client, local_exports: Path
) -> None:
    expired = make_ready_request(alice, ready_at=timezone.now() - timedelta(days=7, minutes=1))
    response = alice_client.post(f"{API}{expired.pk}/download-link/")
    assert response.status_code == 410
    assert response.json()["code"] == "expired"


def test_methods_the_api_does_not_offer_are_405(alice_client: Client, alice_request: AccessRequest) -> None:
    assert alice_client.delete(f"{API}{alice_request.pk}/").status_code == 405
    assert alice_client.put(API, data="{}", content_type="application/json").status_code == 405


def test_someone_signed_in_who_is_not_a_customer_gets_404(client: Client, db: None) -> None:
    client.force_login(UserFactory.create(username="stranger"))
    assert client.get(API).status_code == 404
    assert client.post(API).status_code == 404


# --- Staff ------------------------------------------------------------------------------------


def test_customers_do_not_see_the_staff_api(alice_client: Client, alice_request: AccessRequest) -> None:
    assert alice_client.get(STAFF_API).status_code == 404
    assert alice_client.post(f"{STAFF_API}{alice_request.pk}/retry/").status_code == 404


def test_staff_without_the_permission_get_403(client: Client, support_user: Any, mfa_login: Any) -> None:
    mfa_login(client, support_user)
    response = client.get(STAFF_API)
    assert response.status_code == 403
    assert response.json()["detail"]


def test_staff_list_everyones_requests_with_filters(
    staff_client: Client, alice: Customer, bob: Customer, local_exports: Path
) -> None:
    late = make_request(alice, received_at=timezone.now() - timedelta(days=40))
    ready = make_ready_request(bob)

    everyone = staff_client.get(STAFF_API).json()
    assert everyone["count"] == 2
    assert [item["id"] for item in everyone["results"]] == [str(late.pk), str(ready.pk)]
    assert staff_client.get(STAFF_API, {"status": "ready"}).json()["results"][0]["id"] == str(ready.pk)
    assert [i["id"] for i in staff_client.get(STAFF_API, {"overdue": "true"}).json()["results"]] == [
        str(late.pk)
    ]
    assert staff_client.get(STAFF_API, {"customer": bob.pk}).json()["count"] == 1


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("status", "lost"), ("customer", "alice"), ("customer", "-1"), ("overdue", "perhaps"), ("limit", "x")],
)
def test_staff_filters_with_bad_values_are_400_naming_the_field(
    staff_client: Client, parameter: str, value: str
) -> None:
    response = staff_client.get(STAFF_API, {parameter: value})
    if parameter == "limit":  # the paginator falls back to its default
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert parameter in response.json()


def test_staff_extend_a_deadline_with_a_reason(staff_client: Client, alice_request: AccessRequest) -> None:
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/extend/", {"reason": "Many requests"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["extension_reason"] == "Many requests"
    assert response.json()["due_on"] == alice_request.extended_due_on.isoformat()

    again = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/extend/", {"reason": "Again"}, content_type="application/json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "cannot_extend"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": ["a", "b"]}])
def test_staff_actions_without_a_reason_are_400(
    staff_client: Client, alice_request: AccessRequest, body: dict[str, Any]
) -> None:
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/reject/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()


def test_staff_reject_and_then_cannot_retry(staff_client: Client, alice_request: AccessRequest) -> None:
    rejected = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/reject/",
        {"reason": "Not our customer"},
        content_type="application/json",
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    retry = staff_client.post(f"{STAFF_API}{alice_request.pk}/retry/")
    assert retry.status_code == 409
    assert retry.json()["code"] == "not_failed"


def test_staff_retry_a_failed_build(staff_client: Client, alice: Customer) -> None:
    failed = make_request(alice, status=AccessRequest.Status.FAILED, failure_reason="OSError")
    response = staff_client.post(f"{STAFF_API}{failed.pk}/retry/")
    assert response.status_code == 200
    assert response.json()["status"] == "received"


def test_malformed_json_is_400(staff_client: Client, alice_request: AccessRequest) -> None:
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/reject/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_the_schema_and_its_docs_page(client: Client, db: None) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/access-requests/", "/api/v1/access-requests/{request_id}/download-link/"} <= set(paths)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "POST /api/v1/access-requests/" in page
    assert "cdn" not in page.lower() and "<script" not in page


# --- Bodies the API will not read -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "extend"])
@pytest.mark.parametrize(
    "body",
    [
        '{"reason": ' + "[" * 100_000 + "]" * 100_000 + "}",  # Python's json recursed into a 500 here
        '{"reason": ' + "[" * 9 + "]" * 9 + "}",
        "[" * 200_000,
        '{"reason": "' + "x" * 70_000 + '"}',
        '{"reason": "fine", "padding": "' + " " * 70_000 + '"}',
    ],
    ids=["nested-100000", "nested-9", "unterminated-200000", "reason-70kB", "padding-70kB"],
)
def test_staff_actions_refuse_over_deep_or_over_large_json(
    staff_client: Client, alice_request: AccessRequest, action: str, body: str
) -> None:
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/{action}/", body, content_type="application/json"
    )
    assert response.status_code == 400
    alice_request.refresh_from_db()
    assert alice_request.status == AccessRequest.Status.RECEIVED


def test_an_over_large_form_body_is_refused_too(staff_client: Client, alice_request: AccessRequest) -> None:
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/reject/",
        "reason=" + "x" * 70_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400


def test_a_reason_with_brackets_and_quotes_in_it_is_not_nesting(
    staff_client: Client, alice_request: AccessRequest
) -> None:
    reason = 'Asked twice ("[[[[[[[[[[" in the subject, {{{{{{{{{{ in the body) \\ see ticket'
    response = staff_client.post(
        f"{STAFF_API}{alice_request.pk}/reject/", {"reason": reason}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
