"""The Google Analytics connector, through the Admin API client and google-auth, against a local
Google: the property's data retention against the policy's 26 months, and Alice's analytics id
deleted at Google when her data goes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from customers.models import Customer
from processors.ledger import JobLedger
from processors.models import ProcessorCheck, ProcessorJob
from processors.registry import GoogleAnalyticsConnector, ProcessorDeletion
from processors.selectors import erasure_subjects, processor_problems
from processors.services import check_processors
from retention.models import AnalyticsIdentifier, DeletionLog, PurgeRun
from retention.windows import RetentionPeriods
from tests.processors.fakes import FakeGoogle

pytestmark = pytest.mark.django_db


def check_google() -> ProcessorCheck:
    (check,) = check_processors(connectors=[GoogleAnalyticsConnector(retry_deadline=1.0)])
    return check


def delete_at_google(customer: Customer, run: PurgeRun | None = None) -> ProcessorDeletion:
    subject = erasure_subjects([customer.pk])[customer.pk]
    ledger = JobLedger(processor="google_analytics", customer_id=customer.pk, run=run)
    return GoogleAnalyticsConnector().delete_customer(subject, ledger=ledger)


def test_google_analytics_is_off_until_a_property_and_a_key_are_configured(no_processors: None) -> None:
    status = GoogleAnalyticsConnector().status()
    assert not status.configured
    assert "GA_PROPERTY_ID" in status.reason and "GA_CREDENTIALS_FILE" in status.reason


def test_standard_14_months_against_the_policys_26_is_drift_with_both_ways_out(
    fake_google: FakeGoogle,
) -> None:
    check = check_google()

    assert not check.ok and not check.error
    (drift,) = check.drift
    assert drift["setting"] == "Event data retention"
    assert (drift["expected"], drift["actual"]) == ("26 months", "14 months")
    assert "only 2 or 14 months" in drift["fix"] and "360" in drift["fix"]
    assert "RETENTION_ANALYTICS_MONTHS" in drift["fix"]
    assert fake_google.self_signed_jwts == 1  # the Admin client signs in with the service account's key
    assert processor_problems() == [
        "Google Analytics: Event data retention is 14 months; the policy says 26 months"
    ]


def test_drift_clears_when_the_property_keeps_26_months(fake_google: FakeGoogle) -> None:
    assert not check_google().ok
    fake_google.event_data_retention = "TWENTY_SIX_MONTHS"

    check = check_google()

    assert check.ok and check.drift == []
    assert processor_problems() == []


def test_drift_clears_when_the_policy_says_14_months(fake_google: FakeGoogle, settings: Any) -> None:
    settings.RETENTION = dataclasses.replace(RetentionPeriods.from_settings(), analytics_months=14)

    assert check_google().ok


def test_user_data_kept_past_the_policy_or_reset_on_activity_is_drift(fake_google: FakeGoogle) -> None:
    fake_google.event_data_retention = "TWENTY_SIX_MONTHS"
    fake_google.user_data_retention = "FIFTY_MONTHS"
    fake_google.reset_user_data_on_new_activity = True

    check = check_google()

    assert [item["setting"] for item in check.drift] == [
        "User data retention",
        "Reset user data on new activity",
    ]


def test_a_property_google_does_not_know_is_a_failed_check_not_a_crash(
    fake_google: FakeGoogle, settings: Any
) -> None:
    settings.GA_PROPERTY_ID = "999"

    check = check_google()

    assert not check.ok
    assert check.error == "google_analytics: read data retention settings: HTTP 404 (NotFound)"


def test_google_down_is_a_failed_check(fake_google: FakeGoogle) -> None:
    fake_google.down = True

    check = check_google()

    assert not check.ok
    assert "read data retention settings" in check.error
    assert processor_problems() == [f"Google Analytics: the check failed: {check.error}"]


def test_alices_analytics_id_is_deleted_at_google_with_her_data(
    fake_google: FakeGoogle, alice: Customer
) -> None:
    identifier = AnalyticsIdentifier.objects.create(customer=alice, client_id="1234567890.1712345678")
    run = PurgeRun.objects.create(category="correspondence", as_of="2026-01-01")

    deletion = delete_at_google(alice, run)

    assert deletion.complete, deletion.errors
    assert fake_google.deletion_requests == [
        {
            "kind": "analytics#userDeletionRequest",
            "id": {"type": "CLIENT_ID", "userId": "1234567890.1712345678"},
            "propertyId": fake_google.property_id,
        }
    ]
    job = ProcessorJob.objects.get(customer_id=alice.pk, kind="user_deletion")
    assert (job.status, job.target_ids) == ("completed", [identifier.pk])
    logged = DeletionLog.objects.get(run=run, model="google_analytics.UserDeletionRequest")
    assert (logged.category, logged.customer_id, logged.record_ids) == (
        "web_analytics",
        alice.pk,
        [identifier.pk],
    )
    assert fake_google.tokens_issued == 1  # the User Deletion API: an access token from the token endpoint


def test_a_customer_without_an_analytics_id_needs_nothing_from_google(
    fake_google: FakeGoogle, bob: Customer
) -> None:
    deletion = delete_at_google(bob)

    assert deletion.complete
    assert fake_google.requests == []


def test_the_deletion_request_waits_out_429_and_goes_on(fake_google: FakeGoogle, alice: Customer) -> None:
    AnalyticsIdentifier.objects.create(customer=alice, client_id="1.2")
    fake_google.rate_limit_next, fake_google.retry_after = 1, 1
    fake_google.rate_limit_path = r"/analytics/v3/userDeletion/.*"

    deletion = delete_at_google(alice)

    assert deletion.complete, deletion.errors
    assert [r.status for r in fake_google.requests if "userDeletion" in r.path] == [429, 200]


def test_google_down_leaves_the_deletion_pending_with_its_error(
    fake_google: FakeGoogle, alice: Customer
) -> None:
    AnalyticsIdentifier.objects.create(customer=alice, client_id="1.2")
    fake_google.down = True

    deletion = delete_at_google(alice)

    assert not deletion.complete and deletion.unavailable
    job = ProcessorJob.objects.get(customer_id=alice.pk, kind="user_deletion")
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.last_error.startswith("google_analytics: user deletion request")
    fake_google.down = False

    assert delete_at_google(alice).complete
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("completed", 2)
