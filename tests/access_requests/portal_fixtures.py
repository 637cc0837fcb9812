"""Fixtures for the customer's side of access requests: Alice's requests in each state, with a
real ZIP in the export storage (local files, or moto's S3 server).

Imported by name into the test modules that use them (tests/access_requests has no conftest of
its own, so the helpers writing the export pipeline's tests are not tied to these).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from access_requests.clock import gdpr_due_date
from access_requests.models import AccessRequest
from customers.models import Customer
from tests.fixtures_s3 import S3_REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ZIP_CONTENT = {"index.html": "<h1>Dine data</h1>", "data.json": json.dumps({"customer": "Alice Hansen"})}


# The members' timestamp: fixed, so two builds of the ZIP are the same bytes whatever the clock says
# (ZIP stores local time in two-second steps; a build on each side of a step would differ).
ZIP_MEMBER_TIME = (2026, 1, 1, 12, 0, 0)


def small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in ZIP_CONTENT.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_MEMBER_TIME), text)
    return buffer.getvalue()


def make_request(customer: Customer, **fields: Any) -> AccessRequest:
    now = timezone.now()
    fields.setdefault("received_at", now)
    fields.setdefault("due_on", gdpr_due_date(timezone.localdate(fields["received_at"])))
    return AccessRequest.objects.create(customer=customer, **fields)


def make_ready_request(customer: Customer, *, ready_at: Any = None, **fields: Any) -> AccessRequest:
    ready_at = ready_at or timezone.now()
    name = default_storage.save(f"exports/{uuid.uuid4()}-test.zip", ContentFile(small_zip()))
    return make_request(
        customer,
        status=AccessRequest.Status.READY,
        progress=100,
        ready_at=ready_at,
        expires_at=ready_at + timedelta(days=7),
        export_name=name,
        export_size=default_storage.size(name),
        **fields,
    )


@pytest.fixture
def local_exports(settings: Any, tmp_path: Path) -> Path:
    """Exports go to local files in the test's own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def s3_exports(settings: Any, s3: S3Client, s3_endpoint: str) -> Iterator[str]:
    """Exports go to a fresh bucket on moto's S3 server, through django-storages, as in production."""
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_endpoint,
                "region_name": S3_REGION,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "object_parameters": {"ServerSideEncryption": "AES256", "CacheControl": "no-store"},
            },
        },
    }
    yield bucket


@pytest.fixture
def alice_request(alice: Customer) -> AccessRequest:
    """Alice's request, just received."""
    return make_request(alice)


@pytest.fixture
def alice_ready_request(alice: Customer, local_exports: Path) -> AccessRequest:
    """Alice's request with its ZIP ready in local storage."""
    return make_ready_request(alice)


@pytest.fixture
def alice_client(alice: Customer) -> Client:
    client = Client()
    assert alice.user is not None
    client.force_login(alice.user)
    return client


@pytest.fixture
def bob_client(bob: Customer) -> Client:
    client = Client()
    assert bob.user is not None
    client.force_login(bob.user)
    return client
