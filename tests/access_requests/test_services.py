"""The access-request lifecycle as stories: Alice asks in the portal, Bob asks by phone, the privacy
officer extends, rejects and retries; every step audited or told, and refused with a clear reason
when it is not allowed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone, translation
from django.utils.formats import date_format

from access_requests import services
from access_requests.clock import gdpr_due_date
from access_requests.export import build
from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers.models import Customer
from tests.access_requests.conftest import new_request

pytestmark = pytest.mark.django_db


def test_alice_asks_in_the_portal_and_is_told_it_is_received(
    alice: Customer, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        access_request = services.access_request_create(customer=alice, acting_user=alice.user)
    assert access_request.status == AccessRequest.Status.RECEIVED
    assert access_request.channel == AccessRequest.Channel.PORTAL
    assert access_request.due_on == gdpr_due_date(timezone.localdate())
    assert access_request.created_by is None
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.ACCESS_REQUESTED)
    assert (event.customer_id, event.actor_id) == (alice.pk, alice.user.pk)
    assert (event.object_type, event.object_id) == ("access_requests.AccessRequest", str(access_request.pk))
    assert len(callbacks) == 2  # the build is queued and the mail sent only once this commits

    callbacks[1]()  # the e-mail (the build is left to the tasks' tests)
    [message] = mail.outbox
    assert message.to == ["alice@example.no"]
    assert "received" in message.subject
    assert f"{settings.PORTAL_BASE_URL}{access_request.get_absolute_url()}" in message.body
    assert message.alternatives[0][1] == "text/html"


def test_the_customer_email_is_norwegian_with_an_english_copy(alice: Customer) -> None:
    from access_requests.notifications import notify_received

    access_request = new_request(alice)
    assert notify_received(access_request_id=access_request.pk)
    [message] = mail.outbox
    html = str(message.alternatives[0][0])
    assert '<td lang="nb"' in html and '<td lang="en"' in html
    assert html.index('lang="nb"') < html.index('lang="en"')
    reference = str(access_request.pk)[:8]
    assert message.body.count(f"Referanse: {reference}") == 1  # once per language, Norwegian first
    assert message.body.count(f"Reference: {reference}") == 1
    assert message.body.index(f"Referanse: {reference}") < message.body.index(f"Reference: {reference}")


def test_notifications_about_a_vanished_request_send_nothing() -> None:
    from access_requests import notifications

    gone = "00000000-0000-0000-0000-000000000000"
    for notify in (
        notifications.notify_received,
        notifications.notify_ready,
        notifications.notify_failed,
        notifications.notify_extended,
        notifications.notify_rejected,
    ):
        assert notify(access_request_id=gone) is False
    assert mail.outbox == []


def test_a_mail_server_that_fails_does_not_undo_the_request(alice: Customer, settings: Any) -> None:
    from access_requests.notifications import notify_received

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2}}}  # fmt: skip
    access_request = new_request(alice)
    assert notify_received(access_request_id=access_request.pk) is False


def test_one_open_request_at_a_time_with_a_clear_reason(alice: Customer) -> None:
    first = services.access_request_create(customer=alice, acting_user=alice.user)
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_create(customer=alice, acting_user=alice.user)
    assert refusal.value.code == "already_open"
    message = " ".join(refusal.value.messages)
    assert timezone.localdate(first.received_at).strftime("%d.%m.%Y") in message
    assert "received" in message.lower()
    AccessRequest.objects.filter(pk=first.pk).update(status=AccessRequest.Status.DOWNLOADED)
    second = services.access_request_create(customer=alice, acting_user=alice.user)
    assert second.pk != first.pk


def test_a_request_by_phone_needs_the_identity_check_recorded(bob: Customer, privacy_officer: Any) -> None:
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_create(
            customer=bob,
            acting_user=privacy_officer,
            channel=AccessRequest.Channel.PHONE,
            identity_verification=" ",
        )
    assert refusal.value.code == "identity_not_verified"
    assert not AccessRequest.objects.exists()

    registered = services.access_request_create(
        customer=bob,
        acting_user=privacy_officer,
        channel=AccessRequest.Channel.PHONE,
        identity_verification="Ringte tilbake på nummeret i kunderegisteret",
    )
    assert registered.created_by == privacy_officer
    assert registered.channel == AccessRequest.Channel.PHONE
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.ACCESS_REQUESTED).actor_id == privacy_officer.pk


@pytest.mark.parametrize("status", [AccessRequest.Status.RECEIVED, AccessRequest.Status.FAILED])
def test_the_privacy_officer_rejects_a_request_and_the_customer_is_told_why(
    alice: Customer, privacy_officer: Any, status: str, django_capture_on_commit_callbacks: Any
) -> None:
    access_request = new_request(alice, status=status)
    with django_capture_on_commit_callbacks(execute=True):
        rejected = services.access_request_reject(
            access_request=access_request,
            reason="Vi kunne ikke bekrefte identiteten",
            acting_user=privacy_officer,
        )
    assert rejected.status == AccessRequest.Status.REJECTED
    [message] = mail.outbox
    assert "Vi kunne ikke bekrefte identiteten" in message.body
    assert "datatilsynet.no" in message.body


@pytest.mark.parametrize(
    "status", [AccessRequest.Status.BUILDING, AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED]
)
def test_a_request_being_answered_cannot_be_rejected(
    alice: Customer, privacy_officer: Any, status: str
) -> None:
    access_request = new_request(alice, status=status)
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_reject(
            access_request=access_request, reason="Nei", acting_user=privacy_officer
        )
    assert refusal.value.code == "not_rejectable"


def test_a_rejection_or_extension_needs_a_reason(alice: Customer, privacy_officer: Any) -> None:
    access_request = new_request(alice)
    for act in (services.access_request_reject, services.access_request_extend):
        with pytest.raises(services.AccessRequestRefused) as refusal:
            act(access_request=access_request, reason="  ", acting_user=privacy_officer)
        assert refusal.value.code == "no_reason"


def test_the_customer_is_told_of_the_extension_and_the_new_deadline(
    alice: Customer, privacy_officer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    access_request = new_request(alice)
    with django_capture_on_commit_callbacks(execute=True):
        extended = services.access_request_extend(
            access_request=access_request, reason="Mye data hos underleverandør", acting_user=privacy_officer
        )
    [message] = mail.outbox
    assert "Mye data hos underleverandør" in message.body
    for language in ("nb", "en"):
        with translation.override(language):
            assert date_format(extended.due_on, "DATE_FORMAT") in message.body


def test_a_closed_request_cannot_be_extended(alice: Customer, privacy_officer: Any) -> None:
    access_request = new_request(alice, status=AccessRequest.Status.REJECTED)
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_extend(
            access_request=access_request, reason="Sent", acting_user=privacy_officer
        )
    assert refusal.value.code == "not_open"


def test_a_failed_build_is_retried_from_the_start(
    alice: Customer,
    privacy_officer: Any,
    export_storage_dir: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    failed = new_request(
        alice, status=AccessRequest.Status.FAILED, build_attempts=5, failure_reason="OSError", progress=40
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_retry(access_request=failed, acting_user=privacy_officer)
    failed.refresh_from_db()
    assert failed.status == AccessRequest.Status.READY
    assert failed.build_attempts == 1
    assert failed.failure_reason == ""


def test_only_a_failed_build_can_be_retried(alice: Customer, privacy_officer: Any) -> None:
    access_request = new_request(alice)
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_retry(access_request=access_request, acting_user=privacy_officer)
    assert refusal.value.code == "not_failed"


def test_a_retry_waits_while_the_customer_has_another_open_request(
    alice: Customer, privacy_officer: Any
) -> None:
    failed = new_request(
        alice, status=AccessRequest.Status.FAILED, received_at=timezone.now() - timedelta(days=3)
    )
    new_request(alice)
    with pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_retry(access_request=failed, acting_user=privacy_officer)
    assert refusal.value.code == "already_open"


def test_the_reaper_takes_back_only_builds_that_stopped(alice: Customer, bob: Customer) -> None:
    stale = new_request(
        alice, status=AccessRequest.Status.BUILDING, build_heartbeat_at=timezone.now() - timedelta(minutes=11)
    )
    busy = new_request(
        bob, status=AccessRequest.Status.BUILDING, build_heartbeat_at=timezone.now() - timedelta(minutes=2)
    )
    assert [reaped.pk for reaped in build.builds_reap()] == [stale.pk]
    stale.refresh_from_db()
    busy.refresh_from_db()
    assert (stale.status, busy.status) == (AccessRequest.Status.RECEIVED, AccessRequest.Status.BUILDING)


def test_two_workers_never_build_the_same_export(alice: Customer) -> None:
    access_request = new_request(alice)
    assert build.build_claim(access_request_id=access_request.pk) is True
    assert build.build_claim(access_request_id=access_request.pk) is False


def test_due_dates_are_set_from_the_day_of_receipt(alice: Customer) -> None:
    import time_machine

    with time_machine.travel(timezone.make_aware(timezone.datetime(2027, 1, 31, 23, 30)), tick=False):
        access_request = services.access_request_create(customer=alice, acting_user=alice.user)
    assert access_request.due_on == date(2027, 2, 28)
