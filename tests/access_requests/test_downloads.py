"""Downloading the copy: only the owner, logged, never cached, and gone after 7 days."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers.models import Customer
from tests.access_requests.portal_fixtures import (
    ZIP_CONTENT,
    alice_client,
    alice_ready_request,
    alice_request,
    bob_client,
    local_exports,
    make_ready_request,
    s3_exports,
    small_zip,
)

__all__ = [
    "alice_client",
    "alice_ready_request",
    "alice_request",
    "bob_client",
    "local_exports",
    "s3_exports",
]


def download_url(access_request: AccessRequest) -> str:
    return reverse("access_requests:download", kwargs={"request_id": access_request.pk})


def test_local_storage_streams_the_zip_as_a_never_cached_attachment(
    alice_client: Client, alice_ready_request: AccessRequest
) -> None:
    response = alice_client.get(download_url(alice_ready_request))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="wp-hosting-data-')
    assert "no-store" in response["Cache-Control"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {name: archive.read(name).decode() for name in archive.namelist()} == ZIP_CONTENT


def test_a_download_is_recorded_and_lets_her_ask_again(
    alice: Customer, alice_client: Client, alice_ready_request: AccessRequest
) -> None:
    for _ in range(2):
        b"".join(alice_client.get(download_url(alice_ready_request)).streaming_content)

    alice_ready_request.refresh_from_db()
    assert alice_ready_request.status == AccessRequest.Status.DOWNLOADED
    assert alice_ready_request.download_count == 2
    assert alice_ready_request.downloaded_at is not None
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPORT_DOWNLOADED)
    assert [(e.actor_id, e.customer_id, e.object_id) for e in events] == 2 * [
        (alice.user.pk, alice.pk, str(alice_ready_request.pk))
    ]
    assert not alice_ready_request.is_open  # a new request is allowed


def test_s3_redirects_to_a_presigned_url_valid_at_most_five_minutes(
    alice: Customer, alice_client: Client, s3_exports: str
) -> None:
    access_request = make_ready_request(alice)

    response = alice_client.get(download_url(access_request))

    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    location = response["Location"]
    query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    assert int(query["X-Amz-Expires"]) <= 300
    assert query["response-content-disposition"].startswith('attachment; filename="wp-hosting-data-')
    assert query["response-cache-control"] == "no-store"
    assert urlsplit(location).path.endswith(access_request.export_name)
    # The S3 server honours them: the browser saves the file and caches nothing.
    with urllib.request.urlopen(location) as fetched:  # noqa: S310 - the local moto server
        assert fetched.headers["Content-Disposition"].startswith("attachment;")
        assert fetched.headers["Cache-Control"] == "no-store"
        assert fetched.read() == small_zip()
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.EXPORT_DOWNLOADED, customer_id=alice.pk, object_id=str(access_request.pk)
    ).exists()


def test_the_zip_she_is_compared_with_does_not_depend_on_the_clocks_second() -> None:
    # The download above is compared with a ZIP built again at comparison time; ZIP timestamps
    # step every two seconds, so the two builds must not take the time from the clock.
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        first = small_zip()
        traveller.shift(timedelta(seconds=3))
        assert small_zip() == first


def test_after_seven_days_the_download_is_gone_with_a_page_offering_a_new_request(
    alice: Customer, alice_client: Client, local_exports: Path
) -> None:
    # Ready seven days and a minute ago; the hourly expiry has not run yet, so the file is there.
    alice_ready_request = make_ready_request(alice, ready_at=timezone.now() - timedelta(days=7, minutes=1))
    response = alice_client.get(download_url(alice_ready_request))
    assert response.status_code == 410
    assert "no-store" in response["Cache-Control"]
    assert f'action="{reverse("access_requests:request_create")}"' in response.content.decode()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPORT_DOWNLOADED).exists()
    alice_ready_request.refresh_from_db()
    assert alice_ready_request.download_count == 0


def test_an_expired_request_answers_410(alice: Customer, alice_client: Client, local_exports: Path) -> None:
    access_request = make_ready_request(alice, ready_at=timezone.now() - timedelta(days=8))
    AccessRequest.objects.filter(pk=access_request.pk).update(
        status=AccessRequest.Status.EXPIRED, export_name=""
    )
    assert alice_client.get(download_url(access_request)).status_code == 410


def test_a_file_already_swept_answers_410(alice_client: Client, alice_ready_request: AccessRequest) -> None:
    default_storage.delete(alice_ready_request.export_name)
    assert alice_client.get(download_url(alice_ready_request)).status_code == 410
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPORT_DOWNLOADED).exists()


def test_a_copy_not_ready_yet_sends_her_back_to_its_page(
    alice_client: Client, alice_request: AccessRequest
) -> None:
    response = alice_client.get(download_url(alice_request))
    assert response.status_code == 302
    assert response["Location"] == alice_request.get_absolute_url()


def test_bob_cannot_download_alices_copy(bob_client: Client, alice_ready_request: AccessRequest) -> None:
    assert bob_client.get(download_url(alice_ready_request)).status_code == 404
    alice_ready_request.refresh_from_db()
    assert alice_ready_request.download_count == 0


@pytest.mark.django_db
def test_someone_not_signed_in_is_sent_to_sign_in(client: Client, alice_ready_request: AccessRequest) -> None:
    response = client.get(download_url(alice_ready_request))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
