"""Fixtures that start the processors' local fakes and point the portal's settings at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processors.fakes import (
    AGENT_EMAIL,
    API_TOKEN,
    SUBDOMAIN,
    FakeGoogle,
    FakeWorkspace,
    FakeZendesk,
)


@pytest.fixture
def fake_zendesk(settings: Any) -> Iterator[FakeZendesk]:
    """A local Zendesk, and the settings that turn the Zendesk connector on and point it there."""
    fake = FakeZendesk().start()
    settings.ZENDESK_SUBDOMAIN = SUBDOMAIN
    settings.ZENDESK_EMAIL = AGENT_EMAIL
    settings.ZENDESK_API_TOKEN = API_TOKEN
    settings.ZENDESK_BASE_URL = fake.url
    settings.ZENDESK_JOB_POLL_SECONDS = 0.0
    settings.ZENDESK_JOB_WAIT_SECONDS = 5
    settings.ZENDESK_RATE_LIMIT_WAIT_SECONDS = 10
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_google(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogle]:
    """A local Google (token endpoint, Admin API, User Deletion API), a service account key whose
    token endpoint is there, and the settings that turn the Google Analytics connector on."""
    from google.oauth2 import service_account

    # After signing in, google-auth looks up the service account's regional access boundary at
    # iamcredentials.googleapis.com, in the background; the tests have no internet to do it on.
    monkeypatch.setattr(
        service_account.Credentials, "_is_regional_access_boundary_lookup_required", lambda self: False
    )
    fake = FakeGoogle().start()
    settings.GA_PROPERTY_ID = fake.property_id
    settings.GA_CREDENTIALS_FILE = fake.service_account_file(tmp_path / "service-account.json")
    settings.GA_API_ENDPOINT = fake.url
    settings.GA_USER_DELETION_ENDPOINT = fake.url
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_workspace(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    """A local Google (token endpoint with domain-wide delegation, the Gmail API) with two
    mailboxes, and the settings that turn the Google Workspace connector on and point it there."""
    from google.oauth2 import service_account

    from processors.google_workspace import GoogleWorkspaceConnector

    monkeypatch.setattr(
        service_account.Credentials, "_is_regional_access_boundary_lookup_required", lambda self: False
    )
    # googleapiclient's own retries back off for seconds; the tests see the first answer.
    monkeypatch.setattr(GoogleWorkspaceConnector, "num_retries", 0)
    fake = FakeWorkspace().start()
    settings.GOOGLE_WORKSPACE_CREDENTIALS_FILE = fake.service_account_file(
        tmp_path / "workspace-account.json"
    )
    settings.GOOGLE_WORKSPACE_MAILBOXES = list(fake.mailboxes)
    settings.GOOGLE_WORKSPACE_API_ENDPOINT = fake.url
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def no_processors(settings: Any) -> None:
    """Every connector off, whatever a developer's .env says."""
    for name in (
        "ZENDESK_SUBDOMAIN",
        "ZENDESK_EMAIL",
        "ZENDESK_API_TOKEN",
        "GA_PROPERTY_ID",
        "GA_CREDENTIALS_FILE",
        "GOOGLE_WORKSPACE_CREDENTIALS_FILE",
    ):
        setattr(settings, name, "")
    settings.SERVER_LOGS_BUCKET = ""
    settings.AWS_STORAGE_BUCKET_NAME = ""


@pytest.fixture
def no_zendesk(settings: Any) -> None:
    for name in ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"):
        setattr(settings, name, "")
