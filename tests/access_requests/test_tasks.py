"""The build task when things go wrong, and the jobs that keep requests from hanging: a storage that
fails (retried, then failed and told), a worker that dies (reaped and rebuilt), a task that is lost
(queued again), and the hourly expiry that deletes exports past their 7 days."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import time_machine
from botocore.exceptions import EndpointConnectionError
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.db import OperationalError
from django.utils import timezone

from access_requests.expiry import ExportExpiryPurge
from access_requests.export import MAX_BUILD_ATTEMPTS, export_build
from access_requests.models import AccessRequest
from access_requests.tasks import build_export_task, expire_exports_task, reap_builds_task
from customers.models import Customer
from portal.celery import app
from processors.base import ExternalTable
from retention.models import DeletionLog, PurgeRun
from retention.services import PURGES, purge_preview
from tests.access_requests.conftest import new_request
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def build(access_request: AccessRequest) -> AccessRequest:
    """Run the task as a worker would (retries included, at once), and read the row back."""
    build_export_task.apply(kwargs={"access_request_id": str(access_request.pk)})
    access_request.refresh_from_db()
    return access_request


@pytest.fixture
def broken_storage(settings: Any, tmp_path: Path) -> Path:
    """A real failure: the export directory would have to be made inside a regular file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "media")},
        },
    }
    return blocker


class FlakyStorage(FileSystemStorage):
    """Local files that refuse the first `failures` saves, as a storage service having a bad minute."""

    failures: ClassVar[int] = 0

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        if FlakyStorage.failures > 0:
            FlakyStorage.failures -= 1
            raise ConnectionResetError("the storage went away")
        return super().save(name, content, max_length)


@pytest.fixture
def flaky_storage(settings: Any, tmp_path: Path) -> type[FlakyStorage]:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{__name__}.FlakyStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    FlakyStorage.failures = 0
    return FlakyStorage


# --- Retries -------------------------------------------------------------------------------------


def test_the_build_task_retries_with_backoff_on_errors_that_pass() -> None:
    assert build_export_task.name == "access_requests.build_export"
    assert build_export_task.acks_late is True
    assert build_export_task.max_retries == MAX_BUILD_ATTEMPTS - 1
    for passing in (ConnectionResetError, NotADirectoryError, OperationalError, EndpointConnectionError):
        assert issubclass(passing, build_export_task.autoretry_for)
    assert build_export_task.retry_backoff


def test_a_failing_storage_is_retried_then_the_request_fails_and_everyone_is_told(
    alice: Customer,
    broken_storage: Path,
    privacy_officer: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    access_request = new_request(alice)
    with django_capture_on_commit_callbacks(execute=True):
        failed = build(access_request)

    assert failed.status == AccessRequest.Status.FAILED
    assert failed.build_attempts == 5
    assert "NotADirectoryError" in failed.failure_reason
    assert str(broken_storage) not in failed.failure_reason  # the kind of error, not its details
    assert failed.export_name == ""
    to_customer = [m for m in mail.outbox if m.to == ["alice@example.no"]]
    to_staff = [m for m in mail.outbox if m.to == [privacy_officer.email]]
    assert len(to_customer) == 1 and "delayed" in to_customer[0].subject
    assert len(to_staff) == 1
    assert str(failed.pk)[:8] in to_staff[0].subject
    assert f"/admin/access_requests/accessrequest/{failed.pk}/change/" in to_staff[0].body
    assert "Alice" not in to_staff[0].body  # ids and a link, no personal data


def test_a_storage_that_recovers_within_the_retries_delivers_the_export(
    alice: Customer, flaky_storage: type[FlakyStorage], django_capture_on_commit_callbacks: Any
) -> None:
    flaky_storage.failures = 2
    with django_capture_on_commit_callbacks(execute=True):
        ready = build(new_request(alice))
    assert ready.status == AccessRequest.Status.READY
    assert ready.build_attempts == 3
    assert ready.failure_reason == ""
    assert [m.subject for m in mail.outbox if m.to == ["alice@example.no"]] == [
        "Kopien av dataene dine er klar / Your copy of your data is ready"  # Norwegian, then English
    ]


def test_a_fault_that_retrying_cannot_mend_fails_the_request_at_once(
    alice: Customer,
    export_storage_dir: Path,
    privacy_officer: Any,
    processor_tables: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def broken_connector(customer: Customer) -> ExternalTable:
        raise ValueError("a bug in a connector")

    processor_tables("correspondence", broken_connector)
    with django_capture_on_commit_callbacks(execute=True):
        failed = build(new_request(alice))
    assert failed.status == AccessRequest.Status.FAILED
    assert failed.build_attempts == 1
    assert "ValueError" in failed.failure_reason
    assert {tuple(m.to) for m in mail.outbox} == {("alice@example.no",), (privacy_officer.email,)}


def test_without_privacy_officers_the_managers_are_told(
    alice: Customer, broken_storage: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MANAGERS = ["drift@wphosting.example"]
    with django_capture_on_commit_callbacks(execute=True):
        build(new_request(alice))
    assert any("drift@wphosting.example" in m.to for m in mail.outbox)


def test_the_task_returns_quietly_when_the_request_is_gone() -> None:
    result = build_export_task.apply(kwargs={"access_request_id": "00000000-0000-0000-0000-000000000000"})
    assert result.successful()


# --- The reaper ----------------------------------------------------------------------------------


class WorkerKilled(BaseException):
    """Stands in for the end of a worker process: nothing after it runs, no handler records it."""


def test_a_killed_workers_build_is_reaped_and_finished(
    alice: Customer,
    export_storage_dir: Path,
    celery_eager: None,
    processor_tables: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    access_request = new_request(alice)

    def dying_connector(customer: Customer) -> ExternalTable:
        raise WorkerKilled

    processor_tables("correspondence", dying_connector)
    with pytest.raises(WorkerKilled):
        export_build(access_request=access_request)
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.BUILDING
    processor_tables("correspondence")

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert reap_builds_task.apply().get() == {"reaped": 0, "requeued": 0}  # still within its time
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=11)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert reap_builds_task.apply().get() == {"reaped": 1, "requeued": 0}

    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.READY
    assert access_request.build_attempts == 2
    assert storages["default"].exists(access_request.export_name)


def test_a_request_whose_task_was_lost_is_queued_again(
    alice: Customer, export_storage_dir: Path, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    access_request = new_request(alice, received_at=timezone.now() - timedelta(minutes=20))
    waiting_briefly = new_request(CustomerFactory.create())
    with django_capture_on_commit_callbacks(execute=True):
        assert reap_builds_task.apply().get() == {"reaped": 0, "requeued": 1}
    access_request.refresh_from_db()
    waiting_briefly.refresh_from_db()
    assert access_request.status == AccessRequest.Status.READY
    assert waiting_briefly.status == AccessRequest.Status.RECEIVED  # its task may still be on its way


def test_a_build_that_keeps_dying_ends_failed_rather_than_looping(
    alice: Customer,
    export_storage_dir: Path,
    privacy_officer: Any,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    access_request = new_request(
        alice,
        status=AccessRequest.Status.BUILDING,
        build_attempts=MAX_BUILD_ATTEMPTS,
        build_heartbeat_at=timezone.now() - timedelta(minutes=30),
    )
    with django_capture_on_commit_callbacks(execute=True):
        reap_builds_task.apply()
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.FAILED
    assert "stopped 5 times" in access_request.failure_reason
    assert {tuple(m.to) for m in mail.outbox} == {("alice@example.no",), (privacy_officer.email,)}


# --- The hourly expiry ---------------------------------------------------------------------------


def _ready_export(customer: Customer, **fields: Any) -> AccessRequest:
    built = export_build(access_request=new_request(customer))
    assert built is not None
    AccessRequest.objects.filter(pk=built.pk).update(**fields)
    built.refresh_from_db()
    return built


def test_the_expiry_is_a_registered_purge_with_an_hourly_beat() -> None:
    assert PURGES["access_request_exports"] is ExportExpiryPurge
    schedule = app.conf.beat_schedule
    assert schedule["expire-access-request-exports"]["task"] == expire_exports_task.name
    assert schedule["reap-access-request-builds"]["task"] == reap_builds_task.name
    assert {expire_exports_task.name, reap_builds_task.name, build_export_task.name} <= set(app.tasks)


def test_exports_past_their_seven_days_are_deleted_and_logged(
    alice: Customer, bob: Customer, export_storage_dir: Path
) -> None:
    storage = storages["default"]
    past = _ready_export(alice, expires_at=timezone.now() - timedelta(minutes=1))
    downloaded = _ready_export(
        bob, status=AccessRequest.Status.DOWNLOADED, expires_at=timezone.now() - timedelta(hours=2)
    )
    current = _ready_export(CustomerFactory.create())
    past_name, downloaded_name = past.export_name, downloaded.export_name

    assert expire_exports_task.apply().get() == {"access_requests.export": 2}

    for gone, name in ((past, past_name), (downloaded, downloaded_name)):
        gone.refresh_from_db()
        assert gone.status == AccessRequest.Status.EXPIRED
        assert gone.export_name == ""
        assert not storage.exists(name)
    current.refresh_from_db()
    assert current.status == AccessRequest.Status.READY and storage.exists(current.export_name)
    run = PurgeRun.objects.get(category="access_request_exports")
    assert run.status == PurgeRun.Status.FINISHED
    lines = DeletionLog.objects.filter(run=run).order_by("customer_id")
    assert [(line.model, line.customer_id, line.count, line.record_ids) for line in lines] == [
        ("access_requests.export", alice.pk, 1, []),
        ("access_requests.export", bob.pk, 1, []),
    ]
    assert {line.rule for line in lines} == {"ready+7d"}


def test_the_preview_shows_what_the_expiry_would_delete(alice: Customer, export_storage_dir: Path) -> None:
    _ready_export(alice)
    today = timezone.localdate()
    assert [line.count for line in purge_preview(category="access_request_exports", as_of=today)] == [0]
    week = today + timedelta(days=7)
    assert [line.count for line in purge_preview(category="access_request_exports", as_of=week)] == [1]


def test_a_file_no_request_leads_to_is_swept_once_past_the_period(export_storage_dir: Path) -> None:
    storage = storages["default"]
    old = storage.save("exports/00000000-0000-0000-0000-000000000001-oldtoken.zip", ContentFile(b"old"))
    young = storage.save("exports/00000000-0000-0000-0000-000000000002-newtoken.zip", ContentFile(b"new"))
    eight_days_ago = time.time() - 8 * 24 * 3600
    os.utime(storage.path(old), (eight_days_ago, eight_days_ago))

    assert expire_exports_task.apply().get() == {"access_requests.export": 1}
    assert not storage.exists(old)
    assert storage.exists(young)
    line = DeletionLog.objects.get(category="access_request_exports")
    assert (line.customer_id, line.count) == (None, 1)


def test_the_expiry_runs_before_any_export_exists(export_storage_dir: Path) -> None:
    assert expire_exports_task.apply().get() == {}
