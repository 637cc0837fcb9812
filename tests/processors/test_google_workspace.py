"""Google Workspace: a customer's e-mail in the company's mailboxes goes into her copy and is
deleted there when her correspondence window closes, through the real Gmail client library
(google-api-python-client) against a local Gmail (tests/processors/fakes.py, `FakeWorkspace`).

Committed data (`transaction=True`): the processor steps are recorded on a connection of their
own, as in the purge."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from access_requests.export import export_build
from customers.models import Correspondence, Customer
from processors import registry
from processors.google_workspace import (
    MESSAGES,
    GoogleWorkspaceConnector,
    message_id_of,
    message_number,
)
from processors.models import ProcessorCheck, ProcessorJob, VaultConfirmation
from processors.services import check_processors
from retention.models import DeletionLog
from retention.services import legal_hold_place, purge_run
from tests.access_requests.conftest import new_request, read_export
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    UserFactory,
)
from tests.processors.fakes import FakeWorkspace

pytestmark = pytest.mark.django_db(transaction=True)

SUPPORT = "support@wphosting.example"
BILLING = "faktura@wphosting.example"


def former_customer(email: str = "post@fjellvann.example.no") -> Customer:
    """A customer whose last contract ended 200 days ago (past the 3-month window), with a contact
    and a conversation held with an address she no longer has."""
    customer = CustomerFactory.create(name="Fjellvann AS", email=email, user=UserFactory.create())
    ended = timezone.localdate() - timedelta(days=200)
    ContractFactory.create(customer=customer, started_on=ended - timedelta(days=400), ended_on=ended)
    ContactFactory.create(customer=customer, email=f"regnskap.{email}")
    CorrespondenceFactory.create(customer=customer, channel="email", email="gammel@fjellvann.example.no")
    return customer


@pytest.fixture
def fjellvann(fake_workspace: FakeWorkspace, no_zendesk: None) -> tuple[Customer, dict[str, set[str]]]:
    customer = former_customer()
    theirs = {
        SUPPORT: {
            fake_workspace.add_message(
                SUPPORT, sender="post@fjellvann.example.no", to=SUPPORT, subject="Nettsiden er nede"
            ),
            fake_workspace.add_message(SUPPORT, sender=SUPPORT, to="Fjellvann <post@fjellvann.example.no>"),
            fake_workspace.add_message(SUPPORT, sender="gammel@fjellvann.example.no", to=SUPPORT),
        },
        BILLING: {
            fake_workspace.add_message(
                BILLING, sender=BILLING, to="x@other.example", cc="regnskap.post@fjellvann.example.no"
            ),
        },
    }
    # Somebody else's mail, which must stay.
    fake_workspace.add_message(SUPPORT, sender="kari@annen.example.no", to=SUPPORT)
    fake_workspace.add_message(BILLING, sender=BILLING, to="kari@annen.example.no")
    return customer, theirs


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_every_gmail_id_fits_a_job_row_and_comes_back_the_same(number: int) -> None:
    message_id = format(number, "x")
    stored = message_number(message_id)
    assert -(1 << 63) <= stored < 1 << 63
    assert message_id_of(stored) == message_id


def test_the_connector_is_off_until_its_key_file_and_mailboxes_are_set(settings: Any) -> None:
    settings.GOOGLE_WORKSPACE_CREDENTIALS_FILE = ""
    settings.GOOGLE_WORKSPACE_MAILBOXES = []
    status = GoogleWorkspaceConnector().status()
    assert not status.configured
    assert (
        "GOOGLE_WORKSPACE_CREDENTIALS_FILE" in status.reason and "GOOGLE_WORKSPACE_MAILBOXES" in status.reason
    )
    assert "google_workspace" not in [connector.key for connector in registry.connectors()]


def test_the_purge_deletes_her_mail_after_zendesk_and_before_her_rows(
    fake_workspace: FakeWorkspace, fjellvann: tuple[Customer, dict[str, set[str]]]
) -> None:
    customer, theirs = fjellvann
    # The purge asks the connectors in the registry's order: her mail after her tickets.
    assert [cls.key for cls in registry.CONNECTOR_CLASSES][:2] == ["zendesk", "google_workspace"]

    run = purge_run(category="correspondence")

    assert run.errors == []
    assert run.counts[MESSAGES] == 4
    assert run.counts["customers.Correspondence"] == 1
    for mailbox, ids in theirs.items():
        assert not ids & fake_workspace.held(mailbox)
        assert set(fake_workspace.deleted[mailbox]) == ids
    assert len(fake_workspace.held(SUPPORT)) == 1 and len(fake_workspace.held(BILLING)) == 1
    # One proof of deletion per mailbox's batch, with Gmail's ids and no address.
    logged = DeletionLog.objects.filter(customer_id=customer.pk, model=MESSAGES)
    assert sorted(line.count for line in logged) == [1, 3]
    assert ProcessorJob.objects.filter(
        customer_id=customer.pk, processor="google_workspace", kind="erasure", status="completed"
    ).exists()
    purge_run(category="customer_account")
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_an_outage_half_way_keeps_her_rows_and_the_next_run_finishes_from_its_jobs(
    fake_workspace: FakeWorkspace, fjellvann: tuple[Customer, dict[str, set[str]]]
) -> None:
    customer, theirs = fjellvann
    # support@ is emptied, then faktura@ is down.
    fake_workspace.fail_deletes = 0
    original = fake_workspace.handle

    def billing_down(method: str, path: str, query: Any, headers: Any, body: bytes) -> Any:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if path.endswith("batchDelete") and fake_workspace.tokens.get(token) == BILLING:
            return 503, {}, fake_workspace.error_body(503, "Backend Error")
        return original(method, path, query, headers, body)

    fake_workspace.handle = billing_down  # type: ignore[method-assign]
    first = purge_run(category="correspondence")

    assert first.errors == [f"customer {customer.pk}: google_workspace: delete messages: HTTP 503"]
    assert not theirs[SUPPORT] & fake_workspace.held(SUPPORT)
    assert theirs[BILLING] <= fake_workspace.held(BILLING)
    assert Correspondence.objects.filter(customer=customer).exists()
    waiting = ProcessorJob.objects.get(customer_id=customer.pk, external_id=BILLING, status="pending")
    assert waiting.last_error.endswith("HTTP 503") and waiting.attempts == 1
    purge_run(category="customer_account")
    assert Customer.objects.filter(pk=customer.pk).exists()

    fake_workspace.handle = original  # type: ignore[method-assign]
    second = purge_run(category="correspondence")

    assert second.errors == []
    assert second.counts[MESSAGES] == 1
    assert not theirs[BILLING] & fake_workspace.held(BILLING)
    waiting.refresh_from_db()
    assert waiting.status == ProcessorJob.Status.COMPLETED and waiting.attempts == 2
    assert not Correspondence.objects.filter(customer=customer).exists()


def test_a_legal_hold_keeps_her_mail_at_google(
    fake_workspace: FakeWorkspace, fjellvann: tuple[Customer, dict[str, set[str]]], privacy_officer: Any
) -> None:
    customer, theirs = fjellvann
    legal_hold_place(customer=customer, reason="Tvist om faktura", ends_on=None, placed_by=privacy_officer)

    run = purge_run(category="correspondence")

    assert run.counts.get(MESSAGES, 0) == 0
    assert theirs[SUPPORT] <= fake_workspace.held(SUPPORT)
    assert fake_workspace.calls("POST", r"/gmail/v1/users/.*/messages/batchDelete") == []
    assert not ProcessorJob.objects.filter(customer_id=customer.pk, processor="google_workspace").exists()


def test_her_copy_holds_her_messages_from_every_mailbox_as_their_own_table(
    fake_workspace: FakeWorkspace,
    fjellvann: tuple[Customer, dict[str, set[str]]],
) -> None:
    customer, theirs = fjellvann
    (table,) = registry.export_tables(customer, "correspondence")[-1:]
    assert table.name == MESSAGES
    rows = list(table.rows)

    assert {(row[0], row[1]) for row in rows} == {(box, i) for box, ids in theirs.items() for i in ids}
    subject = next(row for row in rows if row[5] == "Nettsiden er nede")
    assert subject[3] == "post@fjellvann.example.no"
    assert subject[4] == SUPPORT
    assert subject[6] == "Tekst"
    assert subject[2] == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_her_access_request_copy_has_the_messages_under_correspondence(
    fake_workspace: FakeWorkspace,
    fjellvann: tuple[Customer, dict[str, set[str]]],
    export_storage_dir: Any,
) -> None:
    customer, theirs = fjellvann

    files = read_export(export_build(access_request=new_request(customer)))  # type: ignore[arg-type]

    tables = json.loads(files["data.json"])["categories"]["correspondence"]["tables"]
    (messages,) = [table for table in tables if table["name"] == MESSAGES]
    text = json.dumps(messages, ensure_ascii=False)
    assert len(messages["rows"]) == 4
    assert "Nettsiden er nede" in text
    assert "kari@annen.example.no" not in text
    for ids in theirs.values():
        for message_id in ids:
            assert message_id in text


def test_the_daily_check_shows_a_refused_delegation_and_a_missing_vault_confirmation(
    fake_workspace: FakeWorkspace, no_zendesk: None
) -> None:
    fake_workspace.delegated.discard(BILLING)

    (check,) = check_processors(connectors=[GoogleWorkspaceConnector()])

    assert not check.ok
    settings_named = [item["setting"] for item in check.drift]
    assert settings_named == [
        "Domain-wide delegation",
        "Google Vault retention rules and holds",
    ]
    assert check.drift[0]["actual"] == "refused"
    assert BILLING in check.drift[0]["fix"] and SUPPORT not in check.drift[0]["fix"]
    assert check.drift[1]["actual"] == "never confirmed"


def test_the_check_passes_once_staff_confirm_vault_and_drifts_again_a_year_later(
    fake_workspace: FakeWorkspace, no_zendesk: None, time_machine: Any
) -> None:
    VaultConfirmation.objects.create(
        confirmed_on=timezone.localdate(), confirmed_by_id=1, confirmed_by_name="personvern"
    )
    (check,) = check_processors(connectors=[GoogleWorkspaceConnector()])
    assert check.ok, check.drift

    time_machine.move_to(timezone.now() + timedelta(days=400))
    (later,) = check_processors(connectors=[GoogleWorkspaceConnector()])
    assert [item["setting"] for item in later.drift] == ["Google Vault retention rules and holds"]
    assert later.drift[0]["actual"].startswith("last confirmed on ")


def test_an_unreachable_gmail_is_a_failed_check_not_drift(
    fake_workspace: FakeWorkspace, no_zendesk: None
) -> None:
    fake_workspace.down = True
    (check,) = check_processors(connectors=[GoogleWorkspaceConnector()])
    assert not check.ok and check.drift == []
    assert check.error == "google_workspace: read the mailbox profile: sign-in unavailable"


def test_no_address_reaches_the_logs_or_the_job_rows(
    fake_workspace: FakeWorkspace,
    fjellvann: tuple[Customer, dict[str, set[str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_workspace.down = True
    run = purge_run(category="correspondence")
    fake_workspace.down = False
    purge_run(category="correspondence")

    text = (
        caplog.text
        + json.dumps(run.errors)
        + json.dumps(list(ProcessorJob.objects.values_list("last_error", "external_id")))
    )
    assert "fjellvann.example.no" not in text
    assert "fjellvann%40" not in text.lower()


def test_the_processors_page_asks_staff_to_confirm_vault_and_records_who_did(
    fake_workspace: FakeWorkspace, client: Client, privacy_officer: Any, support_user: Any
) -> None:
    from tests.security.sign_in import sign_in_with_second_factor

    url = reverse("admin:processors_processoroverview_changelist")
    sign_in_with_second_factor(client, privacy_officer)
    page = client.get(url).content.decode()
    assert 'name="vault_confirmed_on"' in page
    assert "Ikke bekreftet: oppbevaringsregler og sperrer i Vault" in page

    future = client.post(url, {"action": "vault_confirm", "vault_confirmed_on": "2099-01-01"})
    assert future.status_code == 400
    assert not VaultConfirmation.objects.exists()

    done = client.post(url, {"action": "vault_confirm", "vault_confirmed_on": date.today().isoformat()})
    assert done.status_code == 302
    confirmation = VaultConfirmation.objects.get()
    assert confirmation.confirmed_by_id == privacy_officer.pk
    assert confirmation.confirmed_on == date.today()
    assert f"av {privacy_officer.username}: ingen oppbevaringsregel" in client.get(url).content.decode()

    client.logout()
    sign_in_with_second_factor(client, support_user)
    refused = client.post(url, {"action": "vault_confirm", "vault_confirmed_on": date.today().isoformat()})
    assert refused.status_code == 403
    assert VaultConfirmation.objects.count() == 1
    assert ProcessorCheck.objects.count() == 0
