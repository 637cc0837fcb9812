"""The privacy officer's screens: every request with its deadline, the overdue and the nearly due
ones, registering a request that came by phone, and extending, rejecting and retrying, each through
the services and never with an error page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from access_requests.clock import gdpr_due_date
from access_requests.models import AccessRequest
from customers.models import Customer
from tests.access_requests.conftest import new_request
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:access_requests_accessrequest_changelist"


@pytest.fixture
def officer_client(client: Client, privacy_officer: Any, staff_login: Any) -> Client:
    staff_login(client, privacy_officer)
    # The admin speaks Norwegian by default; these tests read its English wording.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def change_url(access_request: AccessRequest, action: str = "change") -> str:
    return reverse(f"admin:access_requests_accessrequest_{action}", args=[access_request.pk])


def listed(client: Client, **params: str) -> set[str]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {str(row.pk) for row in response.context["cl"].result_list}


def test_the_privacy_officer_sees_deadlines_and_filters_overdue_and_due_soon(officer_client: Client) -> None:
    today = timezone.localdate()
    overdue = new_request(CustomerFactory.create(), due_on=today - timedelta(days=1))
    failed_overdue = new_request(
        CustomerFactory.create(), status=AccessRequest.Status.FAILED, due_on=today - timedelta(days=3)
    )
    due_today = new_request(CustomerFactory.create(), due_on=today)
    due_in_a_week = new_request(
        CustomerFactory.create(), status=AccessRequest.Status.BUILDING, due_on=today + timedelta(days=7)
    )
    later = new_request(CustomerFactory.create(), due_on=today + timedelta(days=8))
    answered_late = new_request(
        CustomerFactory.create(), status=AccessRequest.Status.DOWNLOADED, due_on=today - timedelta(days=5)
    )
    rejected_soon = new_request(
        CustomerFactory.create(), status=AccessRequest.Status.REJECTED, due_on=today + timedelta(days=2)
    )

    assert listed(officer_client, deadline="overdue") == {str(overdue.pk), str(failed_overdue.pk)}
    assert listed(officer_client, deadline="due_soon") == {str(due_today.pk), str(due_in_a_week.pk)}
    assert len(listed(officer_client)) == 7
    assert listed(officer_client, status="rejected") == {str(rejected_soon.pk)}
    assert str(later.pk) not in listed(officer_client, deadline="due_soon")
    assert str(answered_late.pk) not in listed(officer_client, deadline="overdue")

    page = officer_client.get(reverse(CHANGELIST)).content.decode()
    for heading in ("Received", "Due", "Status", "Overdue", "Extended", "Received through"):
        assert heading in page


def test_search_by_customer_name_email_and_organisation_number(officer_client: Client) -> None:
    fjord = CustomerFactory.create(name="Fjordkraft Web AS", email="post@fjordweb.example.no")
    other = new_request(CustomerFactory.create(name="Annen Kunde AS"))
    found = new_request(fjord)
    number = fjord.organisation_number
    for term in ("Fjordkraft", "fjordweb.example", number, f"{number[:3]} {number[3:6]} {number[6:]}"):
        assert listed(officer_client, q=term) == {str(found.pk)}, term
    assert str(other.pk) not in listed(officer_client, q="Fjordkraft")


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    return len(queries)


def test_the_changelist_does_not_grow_queries_with_rows(officer_client: Client) -> None:
    for _ in range(5):
        new_request(CustomerFactory.create(), extended_at=timezone.now(), channel=AccessRequest.Channel.EMAIL)
    with_five = _queries(officer_client)
    for _ in range(45):
        new_request(CustomerFactory.create())
    assert _queries(officer_client) == with_five


def test_staff_register_a_phone_request_only_with_the_identity_check(
    officer_client: Client, bob: Customer, privacy_officer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    add = reverse("admin:access_requests_accessrequest_add")
    assert officer_client.get(add).status_code == 200

    response = officer_client.post(add, {"customer": bob.pk, "channel": "phone", "identity_verification": ""})
    assert response.status_code == 200
    assert "identity_verification" in response.context["form"].errors
    assert not AccessRequest.objects.exists()

    with django_capture_on_commit_callbacks(execute=False):
        response = officer_client.post(
            add,
            {
                "customer": bob.pk,
                "channel": "phone",
                "identity_verification": "Ringte tilbake på 22 33 44 55",
            },
        )
    registered = AccessRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(registered)
    assert registered.channel == AccessRequest.Channel.PHONE
    assert registered.created_by == privacy_officer
    assert registered.identity_verification == "Ringte tilbake på 22 33 44 55"
    assert registered.due_on == gdpr_due_date(timezone.localdate())


def test_registering_a_second_open_request_is_refused_on_the_form(
    officer_client: Client, bob: Customer
) -> None:
    new_request(bob)
    response = officer_client.post(
        reverse("admin:access_requests_accessrequest_add"),
        {
            "customer": bob.pk,
            "channel": "email",
            "identity_verification": "Svarte fra adressen i kunderegisteret",
        },
    )
    assert response.status_code == 200
    assert "already have a request" in " ".join(response.context["form"].non_field_errors())
    assert AccessRequest.objects.count() == 1


def test_the_portal_is_not_a_channel_staff_can_register(officer_client: Client, bob: Customer) -> None:
    response = officer_client.post(
        reverse("admin:access_requests_accessrequest_add"),
        {"customer": bob.pk, "channel": "portal", "identity_verification": "x"},
    )
    assert response.status_code == 200
    assert "channel" in response.context["form"].errors


def test_the_officer_extends_the_deadline_once_with_a_reason(
    officer_client: Client, alice: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    access_request = new_request(alice)
    page = officer_client.get(change_url(access_request)).content.decode()
    assert change_url(access_request, "extend") in page

    assert officer_client.get(change_url(access_request, "extend")).status_code == 200
    response = officer_client.post(change_url(access_request, "extend"), {"reason": ""})
    assert response.status_code == 200 and "reason" in response.context["form"].errors

    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(change_url(access_request, "extend"), {"reason": "Mye korrespondanse"})
    assert response.status_code == 302
    access_request.refresh_from_db()
    assert access_request.is_extended and access_request.extension_reason == "Mye korrespondanse"
    assert [m.to for m in mail.outbox] == [["alice@example.no"]]

    response = officer_client.post(change_url(access_request, "extend"), {"reason": "En gang til"})
    assert response.status_code == 200
    assert "once" in " ".join(response.context["form"].non_field_errors())
    assert (
        change_url(access_request, "extend")
        not in officer_client.get(change_url(access_request)).content.decode()
    )


def test_the_officer_rejects_with_a_reason(
    officer_client: Client, alice: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    access_request = new_request(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(change_url(access_request, "reject"), {"reason": "Ikke identifisert"})
    assert response.status_code == 302
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.REJECTED
    assert access_request.rejection_reason == "Ikke identifisert"
    assert "Ikke identifisert" in mail.outbox[0].body

    response = officer_client.post(change_url(access_request, "reject"), {"reason": "Igjen"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


def test_the_officer_retries_a_failed_build(
    officer_client: Client,
    alice: Customer,
    export_storage_dir: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    failed = new_request(
        alice, status=AccessRequest.Status.FAILED, build_attempts=5, failure_reason="OSError"
    )
    page = officer_client.get(change_url(failed)).content.decode()
    assert change_url(failed, "retry") in page and "OSError" in page
    assert officer_client.get(change_url(failed, "retry")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(change_url(failed, "retry"))
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == AccessRequest.Status.READY

    response = officer_client.post(change_url(failed, "retry"))
    assert response.status_code == 200 and "Only a failed build" in response.content.decode()


def test_retry_as_a_list_action_reports_each_refusal(
    officer_client: Client, alice: Customer, bob: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    failed = new_request(bob, status=AccessRequest.Status.FAILED)
    blocked = new_request(
        alice, status=AccessRequest.Status.FAILED, received_at=timezone.now() - timedelta(days=2)
    )
    new_request(alice)  # Alice asked again meanwhile: her failed one cannot be retried
    with django_capture_on_commit_callbacks(execute=False):
        response = officer_client.post(
            reverse(CHANGELIST),
            {"action": "retry_failed_builds", "_selected_action": [str(failed.pk), str(blocked.pk)]},
            follow=True,
        )
    assert response.status_code == 200
    failed.refresh_from_db()
    blocked.refresh_from_db()
    assert (failed.status, blocked.status) == (AccessRequest.Status.RECEIVED, AccessRequest.Status.FAILED)
    notes = [str(message) for message in response.context["messages"]]
    assert any("1 build queued again" in note for note in notes)
    assert any(str(blocked.pk)[:8] in note for note in notes)


def test_records_are_read_only_and_never_deleted(officer_client: Client, alice: Customer) -> None:
    access_request = new_request(alice)
    page = officer_client.get(change_url(access_request))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = officer_client.post(change_url(access_request), {"status": "ready", "due_on": "2099-01-01"})
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.RECEIVED
    assert access_request.due_on != timezone.datetime(2099, 1, 1).date()
    assert response.status_code in (302, 403)
    assert officer_client.get(change_url(access_request, "delete")).status_code == 403


def test_unknown_or_malformed_ids_redirect_with_a_message(officer_client: Client) -> None:
    for object_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        for action in ("extend", "reject", "retry"):
            url = reverse(f"admin:access_requests_accessrequest_{action}", args=[object_id])
            response = officer_client.post(url, {"reason": "x"})
            assert response.status_code == 302, (object_id, action)


def test_staff_without_the_permissions_see_nothing(
    client: Client, support_user: Any, alice: Customer, staff_login: Any
) -> None:
    access_request = new_request(alice)
    staff_login(client, support_user)
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:access_requests_accessrequest_add")).status_code == 403
    assert client.post(change_url(access_request, "reject"), {"reason": "x"}).status_code == 403
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.RECEIVED


def test_the_privacy_officer_group_may_view_add_and_change_but_not_delete(privacy_officer: Any) -> None:
    assert privacy_officer.has_perm("access_requests.view_accessrequest")
    assert privacy_officer.has_perm("access_requests.add_accessrequest")
    assert privacy_officer.has_perm("access_requests.change_accessrequest")
    assert not privacy_officer.has_perm("access_requests.delete_accessrequest")
