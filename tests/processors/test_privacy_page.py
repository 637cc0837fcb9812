"""/privacy/: the public privacy policy, rendered from the data map, in Norwegian and English.

The periods it states are checked against what enforces them, found out from the enforcers
themselves (the purges' cutoffs, the lifecycle rule the server-log purge writes, the export
expiry, the analytics setting the daily check accepts), never from the data map: if a purge or a
check keeps data for another period than the page says, these tests fail."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from processors.models import ProcessorCheck
from processors.registry import GoogleAnalyticsConnector
from retention.models import PurgeRun
from retention.purges.audit import SessionAndAuditPurge
from retention.purges.customers import CorrespondencePurge, CustomerAccountPurge, InvoicePurge
from retention.purges.server_log_purge import ServerLogPurge
from retention.server_log_store import LIFECYCLE_RULE_ID, ensure_server_log_lifecycle
from retention.windows import export_expires_at
from tests.processors.fakes import RETENTION_ENUM, FakeGoogle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.django_db

# A day in the middle of a month: the months between a cutoff and it are whole.
TODAY = date(2026, 6, 15)


def months_between(earlier: date, later: date) -> int:
    assert earlier.day == later.day, (earlier, later)
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def enforced_periods() -> dict[str, int]:
    """The periods the purges enforce, read from the purges' own cutoffs on TODAY."""
    customer_months = {
        months_between(purge().cutoff(today=TODAY), TODAY)  # type: ignore[arg-type]
        for purge in (CorrespondencePurge, CustomerAccountPurge)
    }
    assert len(customer_months) == 1
    # A voucher of 31 December is kept through the financial year's end + N years.
    first_deletable_year = date(2032, 1, 1)
    invoice_cutoff = InvoicePurge().cutoff(today=first_deletable_year)
    assert invoice_cutoff is not None
    ready = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    return {
        "customer_data_months": customer_months.pop(),
        "accounting_years": first_deletable_year.year - invoice_cutoff.year,
        "server_log_months": months_between(ServerLogPurge().cutoff(today=TODAY), TODAY),
        "export_days": (export_expires_at(ready, periods=CorrespondencePurge().periods) - ready).days,
        "audit_months": months_between(SessionAndAuditPurge().cutoff(today=TODAY), TODAY),  # type: ignore[arg-type]
    }


def section(html: str, key: str) -> str:
    match = re.search(rf'<article class="card category" id="category-{key}">(.*?)</article>', html, re.S)
    assert match, f"no section for {key}"
    return " ".join(match.group(1).split())


def retention_text(html: str, key: str) -> str:
    match = re.search(r'<dd class="retention">(.*?)</dd>', section(html, key), re.S)
    assert match
    return match.group(1)


def page(client: Client, language: str) -> str:
    response = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    return html


EXPECTED_WORDING = {
    "en": {
        "customer_account": "Until {customer_data_months} months after the customer relationship ended.",
        "contracts": "Until {customer_data_months} months after the customer relationship ended;",
        "correspondence": "Until {customer_data_months} months after the customer relationship ended.",
        "invoices": "Until {accounting_years} years after the end of the financial year",
        "server_logs": "{server_log_months} months from when they were written.",
        "access_request_exports": "The file {export_days} days after it is ready;",
        "sessions_and_audit": "the audit trail {audit_months} months",
    },
    "nb": {
        "customer_account": "Til {customer_data_months} måneder etter at kundeforholdet ble avsluttet.",
        "contracts": "Til {customer_data_months} måneder etter at kundeforholdet ble avsluttet;",
        "correspondence": "Til {customer_data_months} måneder etter at kundeforholdet ble avsluttet.",
        "invoices": "Til {accounting_years} år etter utgangen av regnskapsåret",
        "server_logs": "{server_log_months} måneder fra de ble skrevet.",
        "access_request_exports": "Filen {export_days} dager etter at den er klar;",
        "sessions_and_audit": "tilgangsloggen i {audit_months} måneder",
    },
}


@pytest.mark.parametrize("language", ["nb", "en"])
def test_every_period_on_the_page_is_the_one_the_purges_enforce(client: Client, language: str) -> None:
    html = page(client, language)
    periods = enforced_periods()
    assert periods == {
        "customer_data_months": 3,
        "accounting_years": 5,
        "server_log_months": 6,
        "export_days": 7,
        "audit_months": 24,
    }
    for key, wording in EXPECTED_WORDING[language].items():
        assert wording.format(**periods) in retention_text(html, key), key


def test_a_changed_period_moves_the_page_and_the_purges_together(client: Client, settings: Any) -> None:
    settings.RETENTION = {
        "customer_data_months": 4,
        "accounting_years": 10,
        "server_log_months": 9,
        "export_days": 3,
        "audit_months": 12,
    }
    html = page(client, "en")
    periods = enforced_periods()

    assert periods == settings.RETENTION
    for key, wording in EXPECTED_WORDING["en"].items():
        assert wording.format(**periods) in retention_text(html, key), key


def test_the_lifecycle_days_on_the_page_are_the_rules_the_purge_writes(
    client: Client, server_log_bucket: str, s3: S3Client
) -> None:
    ensure_server_log_lifecycle()
    rules = s3.get_bucket_lifecycle_configuration(Bucket=server_log_bucket)["Rules"]
    (days,) = [rule["Expiration"]["Days"] for rule in rules if rule["ID"] == LIFECYCLE_RULE_ID]

    logs = section(page(client, "en"), "server_logs")

    assert f"An S3 lifecycle rule expires the logs after {days} days" in logs
    assert "never before the 6 months are up" in logs


def test_the_analytics_period_is_the_one_the_daily_check_accepts(
    client: Client, fake_google: FakeGoogle
) -> None:
    accepted = []
    for name in RETENTION_ENUM:
        fake_google.event_data_retention = name
        drift = GoogleAnalyticsConnector(retry_deadline=1.0).check_settings()
        if not [item for item in drift if item.setting == "Event data retention"]:
            accepted.append(name)

    assert accepted == ["TWENTY_SIX_MONTHS"]
    assert retention_text(page(client, "en"), "web_analytics") == "26 months, as set in Google Analytics."
    assert (
        retention_text(page(client, "nb"), "web_analytics")
        == "26 måneder, slik det er innstilt i Google Analytics."
    )


def test_each_processor_is_named_with_its_privacy_policy(client: Client) -> None:
    html = page(client, "en")

    for name, url in (
        ("Amazon Web Services", "https://aws.amazon.com/privacy/"),
        ("Google", "https://policies.google.com/privacy"),
        ("Zendesk", "https://www.zendesk.com/company/agreements-and-terms/privacy-notice/"),
    ):
        assert f'<a href="{url}" rel="noopener">{name}</a>' in html
    assert "Zendesk" in section(html, "correspondence") and "Google" in section(html, "web_analytics")


def test_the_page_says_how_to_ask_for_insight(client: Client) -> None:
    for language, words in (("nb", "Gå til Mine data"), ("en", "Go to My data")):
        html = page(client, language)
        assert f'<a class="button button-primary" href="/my-data/">{words}</a>' in html


def test_each_promise_says_when_it_was_last_verified(
    client: Client, fake_google: FakeGoogle, settings: Any
) -> None:
    run = PurgeRun.objects.create(category="correspondence", as_of=TODAY)
    PurgeRun.objects.filter(pk=run.pk).update(
        status=PurgeRun.Status.FINISHED, finished_at=timezone.make_aware(datetime(2026, 6, 14, 2, 5))
    )
    ProcessorCheck.objects.create(
        processor="google_analytics",
        ok=False,
        drift=[{"setting": "Event data retention", "expected": "26", "actual": "14", "fix": "…"}],
        checked_at=timezone.make_aware(datetime(2026, 6, 15, 6, 0)),
    )

    html = page(client, "en")

    correspondence = section(html, "correspondence")
    assert "The nightly purge deletes what is past the period" in correspondence
    assert "Last verified 06/14/2026." in correspondence
    analytics = section(html, "web_analytics")
    assert "Every day we compare the settings at Google Analytics with this policy." in analytics
    assert "Last verified 06/15/2026. It did not match this policy; we are correcting it." in analytics
    assert "Not yet verified." in section(html, "invoices")
    nb = section(page(client, "nb"), "correspondence")
    assert "Sist kontrollert 14.06.2026." in nb


def test_the_page_is_public(client: Client) -> None:
    response = client.get("/privacy/")
    assert response.status_code == 200
    assert "Personvernerklæring" in response.content.decode()


RIGHTS = {
    # The right's place on the page -> the customer page it sends her to (None: she writes to us).
    "right-access": "access_requests:my_data",
    "right-rectification": "access_requests:details",
    "right-erasure": "access_requests:my_data",
    "right-restriction": None,
    "right-complaint": None,
}


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "nb",
            (
                "Innsyn og kopi",
                "Retting (art. 16)",
                "Sletting (art. 17)",
                "Begrensning (art. 18)",
                "Klage",
                "Rett navn, telefon og adresse",
                "Du får en kvittering",
            ),
        ),
        (
            "en",
            (
                "Insight and a copy",
                "Correction (art. 16)",
                "Deletion (art. 17)",
                "Restriction (art. 18)",
                "Complaint",
            ),
        ),
    ],
)
def test_the_page_lists_each_right_and_how_to_use_it(
    client: Client, language: str, words: tuple[str, ...]
) -> None:
    html = page(client, language)
    rights = html[html.index('id="rights-heading"') :]
    for word in words:
        assert word in rights
    for anchor, target in RIGHTS.items():
        assert f'id="{anchor}"' in rights
        if target is not None:
            entry = rights[rights.index(f'id="{anchor}"') :].split("</dd>")[0]
            assert f'href="{reverse(target)}"' in entry, anchor
    assert "https://www.datatilsynet.no/" in rights


def test_the_rights_the_page_offers_are_pages_a_signed_in_customer_can_use(
    client: Client, alice: Any
) -> None:
    client.force_login(alice.user)
    for target in {target for target in RIGHTS.values() if target}:
        assert client.get(reverse(target)).status_code == 200, target
    my_data = client.get(reverse("access_requests:my_data")).content.decode()
    assert reverse("access_requests:details") in my_data
    assert 'id="erasure-heading"' in my_data
