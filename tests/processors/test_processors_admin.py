"""The admin's Processors page, its drift banner, and Alice's own page for her analytics id."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from customers.models import Customer
from processors.models import ProcessorCheck, ProcessorJob
from retention.models import AnalyticsIdentifier
from tests.processors.fakes import FakeGoogle, FakeZendesk

pytestmark = pytest.mark.django_db

PROCESSORS_URL = "/admin/processors/processoroverview/"


def test_the_privacy_officer_sees_each_processor_and_why_it_is_off(
    client: Client, privacy_officer: Any, mfa_login: Any, no_processors: None
) -> None:
    mfa_login(client, privacy_officer)

    response = client.get(PROCESSORS_URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    html = response.content.decode()
    for name in ("Zendesk", "Google Analytics", "Amazon S3"):
        assert f"<h2>{name}</h2>" in html
    assert "Off: ZENDESK_SUBDOMAIN, ZENDESK_EMAIL, ZENDESK_API_TOKEN not set." in html
    assert "Off: GA_PROPERTY_ID, GA_CREDENTIALS_FILE not set." in html
    assert "Check the settings now" not in html  # nothing to check


def test_the_page_shows_what_each_holds_its_drift_with_the_fix_and_its_last_jobs(
    client: Client,
    privacy_officer: Any,
    mfa_login: Any,
    fake_zendesk: FakeZendesk,
    fake_google: FakeGoogle,
    alice: Customer,
) -> None:
    ProcessorJob.objects.create(
        processor="zendesk",
        kind="tickets.delete",
        customer_id=alice.pk,
        target_ids=[101, 102],
        external_id="job0042",
        attempts=2,
        last_error="zendesk: delete tickets: job job0042 failed",
    )
    mfa_login(client, privacy_officer)

    response = client.post(PROCESSORS_URL, HTTP_ACCEPT_LANGUAGE="en", follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert "2 processors checked; 1 do not match the policy." in html
    assert ProcessorCheck.objects.filter(processor="google_analytics", ok=False).exists()
    assert ProcessorCheck.objects.filter(processor="zendesk", ok=True).exists()
    google = html[html.index('id="processor-google_analytics"') :]
    assert "Event data retention: 14 months (the policy says 26 months)" in google
    assert "upgrade the property to Google Analytics 360" in google
    assert 'href="https://policies.google.com/privacy"' in google
    assert "Web analytics: 26 months, as set in Google Analytics." in google
    zendesk = html[html.index('id="processor-zendesk"') : html.index('id="processor-google_analytics"')]
    assert "Correspondence: Until 3 months after the customer relationship ended." in zendesk
    assert "zendesk.Ticket" in zendesk
    assert "matches the policy" in zendesk
    assert "job0042" in zendesk and "zendesk: delete tickets: job job0042 failed" in zendesk
    assert "retried by the next correspondence purge" in zendesk


def test_the_admin_index_warns_of_drift(
    client: Client, privacy_officer: Any, mfa_login: Any, fake_google: FakeGoogle
) -> None:
    ProcessorCheck.objects.create(
        processor="google_analytics",
        ok=False,
        drift=[
            {"setting": "Event data retention", "expected": "26 months", "actual": "14 months", "fix": "…"}
        ],
    )
    mfa_login(client, privacy_officer)

    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "A processor does not do what the privacy policy promises:" in html
    assert "Google Analytics: Event data retention is 14 months; the policy says 26 months" in html
    assert f'href="{PROCESSORS_URL}"' in html


def test_no_banner_when_the_processors_match(
    client: Client, privacy_officer: Any, mfa_login: Any, fake_google: FakeGoogle
) -> None:
    ProcessorCheck.objects.create(processor="google_analytics", ok=True)
    mfa_login(client, privacy_officer)

    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "A processor does not do what the privacy policy promises" not in html


def test_support_staff_do_not_see_the_processors(client: Client, support_user: Any, mfa_login: Any) -> None:
    mfa_login(client, support_user)

    assert client.get(PROCESSORS_URL).status_code == 403
    assert client.post(PROCESSORS_URL).status_code == 403
    assert not ProcessorCheck.objects.exists()


def test_processor_jobs_are_read_only_proof(client: Client, privacy_officer: Any, mfa_login: Any) -> None:
    job = ProcessorJob.objects.create(processor="zendesk", kind="user.purge", customer_id=7, target_ids=[9])
    mfa_login(client, privacy_officer)

    assert client.get("/admin/processors/processorjob/").status_code == 200
    assert client.get(f"/admin/processors/processorjob/{job.pk}/delete/").status_code == 403


# --- Alice's analytics id (/my-data/analytics/) ------------------------------------------------------


def test_alice_gives_us_her_analytics_id_from_her_ga_cookie(client: Client, alice: Customer) -> None:
    client.force_login(alice.user)  # type: ignore[arg-type]

    page = client.get("/my-data/analytics/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "It is optional." in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]

    response = client.post("/my-data/analytics/", {"client_id": " GA1.1.1234567890.1712345678 "})

    assert response.status_code == 302
    (identifier,) = AnalyticsIdentifier.objects.filter(customer=alice)
    assert identifier.client_id == "1234567890.1712345678"
    assert "1234567890.1712345678" in client.get("/my-data/analytics/").content.decode()


def test_something_that_is_not_an_analytics_id_is_refused_with_the_reason(
    client: Client, alice: Customer
) -> None:
    client.force_login(alice.user)  # type: ignore[arg-type]

    response = client.post(
        "/my-data/analytics/", {"client_id": "alice@example.no"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 200
    assert "That is not a Google Analytics id" in response.content.decode()
    assert not AnalyticsIdentifier.objects.exists()


def test_alice_removes_her_id_and_bob_cannot_remove_it(
    client: Client, alice: Customer, bob: Customer
) -> None:
    identifier = AnalyticsIdentifier.objects.create(customer=alice, client_id="1.2")
    client.force_login(bob.user)  # type: ignore[arg-type]
    client.post("/my-data/analytics/", {"remove": str(identifier.pk)})
    assert AnalyticsIdentifier.objects.filter(pk=identifier.pk).exists()
    assert "1.2" not in client.get("/my-data/analytics/").content.decode().split("<main>")[1]

    client.force_login(alice.user)  # type: ignore[arg-type]
    client.post("/my-data/analytics/", {"remove": str(identifier.pk)})

    assert not AnalyticsIdentifier.objects.filter(pk=identifier.pk).exists()


def test_the_analytics_page_is_for_signed_in_customers_only(
    client: Client, support_user: Any, mfa_login: Any
) -> None:
    assert client.get("/my-data/analytics/").status_code == 302
    mfa_login(client, support_user)
    assert client.get("/my-data/analytics/").status_code == 404


def test_alices_analytics_id_is_in_her_stored_data(alice: Customer) -> None:
    from access_requests.selectors import stored_data_summary

    AnalyticsIdentifier.objects.create(customer=alice, client_id="1.2")

    analytics = next(item for item in stored_data_summary(alice) if item.key == "web_analytics")

    assert [table.count for table in analytics.tables] == [1]
