"""The Zendesk connector, through zenpy, against a local Zendesk: Alice's tickets in her export and
deleted when her window closes; Bob's never touched.

The purge's side of it (a processor down during a purge, the retry next run) is in
test_processor_purge.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import zenpy.lib.api

from access_requests.export import export_build
from customers.models import Customer
from processors.ledger import JobLedger
from processors.models import ProcessorJob
from processors.registry import ProcessorUnavailable, ZendeskConnector, connectors
from processors.selectors import erasure_subjects
from retention.models import DeletionLog, PurgeRun
from tests.access_requests.conftest import new_request, read_export
from tests.factories import ContactFactory
from tests.processors.fakes import FakeZendesk

pytestmark = pytest.mark.django_db


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """zenpy's own sleeps while it waits out a Retry-After, recorded instead of slept."""
    calls: list[float] = []
    monkeypatch.setattr(zenpy.lib.api, "sleep", calls.append)
    return calls


def alices_deletion(connector: ZendeskConnector, alice: Customer, run: PurgeRun | None) -> Any:
    subject = erasure_subjects([alice.pk])[alice.pk]
    return connector.delete_customer(
        subject, ledger=JobLedger(processor="zendesk", customer_id=alice.pk, run=run)
    )


def a_run() -> PurgeRun:
    return PurgeRun.objects.create(category="correspondence", as_of="2026-01-01")


def test_zendesk_is_off_until_configured(no_processors: None) -> None:
    status = ZendeskConnector().status()
    assert not status.configured
    assert "ZENDESK_SUBDOMAIN" in status.reason
    assert [connector.key for connector in connectors()] == []


def test_alices_export_holds_every_ticket_over_three_cursor_pages_with_comments(
    fake_zendesk: FakeZendesk, alice: Customer, bob: Customer
) -> None:
    alice_id = fake_zendesk.add_user("alice@example.no")
    fake_zendesk.add_tickets(alice_id, 2300, comments=2)
    fake_zendesk.add_tickets(fake_zendesk.add_user("bob@berg.example.no"), 3)

    table = ZendeskConnector().export_table(alice, "zendesk.Ticket")
    assert table is not None
    rows = list(table.rows)

    assert len(rows) == 2300
    assert len({row[0] for row in rows}) == 2300
    pages = fake_zendesk.calls("GET", "/api/v2/search/export.json")
    assert len(pages) == 3
    assert [page.query.get("page[after]") is None for page in pages] == [True, False, False]
    assert all(page.query["filter[type]"] == ["ticket"] for page in pages)
    ticket_id, subject, status, _created, _updated, comments = rows[0]
    assert subject == "Spørsmål 1 om nettsiden"
    assert status == "closed"
    assert [comment["body"] for comment in comments] == [
        f"Melding 1 i sak {ticket_id}",
        f"Melding 2 i sak {ticket_id}",
    ]
    assert [comment["sender"] for comment in comments] == ["customer", "support"]


def test_a_contacts_tickets_are_the_customers_too(fake_zendesk: FakeZendesk, bob: Customer) -> None:
    ContactFactory.create(customer=bob, email="Regnskap@Berg.example.no")
    fake_zendesk.add_tickets(fake_zendesk.add_user("regnskap@berg.example.no"), 2)

    table = ZendeskConnector().export_table(bob, "zendesk.Ticket")

    assert table is not None
    assert len(list(table.rows)) == 2


def test_alices_access_request_export_has_her_tickets_under_correspondence(
    fake_zendesk: FakeZendesk, alice: Customer, bob: Customer, export_storage_dir: Path
) -> None:
    fake_zendesk.add_tickets(fake_zendesk.add_user("alice@example.no"), 3, comments=1)
    bobs = fake_zendesk.add_tickets(fake_zendesk.add_user("bob@berg.example.no"), 1)

    files = read_export(export_build(access_request=new_request(alice)))  # type: ignore[arg-type]

    rows = list(csv.reader(io.StringIO(files["zendesk-ticket.csv"].decode("utf-8-sig"))))
    assert rows[0] == ["ticket_id", "subject", "status", "created_at", "updated_at", "comments"]
    assert [row[1] for row in rows[1:]] == [f"Spørsmål {n} om nettsiden" for n in (1, 2, 3)]
    assert json.loads(rows[1][5])[0]["body"] == f"Melding 1 i sak {rows[1][0]}"
    data = json.loads(files["data.json"])
    tables = data["categories"]["correspondence"]["tables"]
    assert [len(table["rows"]) for table in tables if table["name"] == "zendesk.Ticket"] == [3]
    assert str(bobs[0]) not in files["zendesk-ticket.csv"].decode()


def test_export_waits_out_429_with_retry_after_and_goes_on(
    fake_zendesk: FakeZendesk, alice: Customer, slept: list[float]
) -> None:
    fake_zendesk.add_tickets(fake_zendesk.add_user("alice@example.no"), 2)
    fake_zendesk.rate_limit_next, fake_zendesk.retry_after = 2, 3

    table = ZendeskConnector().export_table(alice, "zendesk.Ticket")
    assert table is not None
    rows = list(table.rows)

    assert len(rows) == 2
    assert [r.status for r in fake_zendesk.requests[:3]] == [429, 429, 200]
    # zenpy counts the Retry-After down a second at a time: 3 seconds, twice.
    assert slept == [1] * 6


def test_a_rate_limit_longer_than_the_budget_is_unavailable_not_an_endless_wait(
    fake_zendesk: FakeZendesk, alice: Customer, slept: list[float], settings: Any
) -> None:
    settings.ZENDESK_RATE_LIMIT_WAIT_SECONDS = 4
    fake_zendesk.rate_limit_next, fake_zendesk.retry_after = 100, 3
    table = ZendeskConnector().export_table(alice, "zendesk.Ticket")
    assert table is not None

    with pytest.raises(ProcessorUnavailable, match="still rate-limited") as raised:
        list(table.rows)

    assert isinstance(raised.value, OSError)  # so the export build is retried later
    assert sum(slept) < 4
    assert "alice" not in str(raised.value)


def test_deleting_alice_deletes_her_tickets_then_permanently_then_her_end_user(
    fake_zendesk: FakeZendesk, alice: Customer, bob: Customer
) -> None:
    alice_id = fake_zendesk.add_user("alice@example.no")
    alices = fake_zendesk.add_tickets(alice_id, 250)
    bobs = fake_zendesk.add_tickets(fake_zendesk.add_user("bob@berg.example.no"), 4)
    agent = fake_zendesk.add_user("alice@example.no", role="agent")
    run = a_run()

    deletion = alices_deletion(ZendeskConnector(), alice, run)

    assert deletion.complete, deletion.errors
    assert not set(alices) & set(fake_zendesk.tickets)  # neither live nor among the deleted tickets
    assert fake_zendesk.live_tickets() == set(bobs)
    assert alice_id not in fake_zendesk.users and alice_id not in fake_zendesk.deleted_users
    assert agent in fake_zendesk.users  # an agent sharing her address is not hers to delete
    # 100 ids a job: three bulk deletions, then three permanent ones, each polled until it completed.
    deletes = fake_zendesk.calls("DELETE", r"/api/v2/tickets/destroy_many\.json")
    purges = fake_zendesk.calls("DELETE", r"/api/v2/deleted_tickets/destroy_many(\.json)?")
    assert [len(call.query["ids"][0].split(",")) for call in deletes] == [100, 100, 50]
    assert len(purges) == 3
    assert len(fake_zendesk.calls("GET", r"/api/v2/job_statuses/\w+\.json")) == 6 * fake_zendesk.job_polls
    order = [
        (call.method, call.path.split("/")[3]) for call in fake_zendesk.requests if call.method == "DELETE"
    ]
    assert order == [("DELETE", "tickets")] * 3 + [("DELETE", "deleted_tickets")] * 3 + [
        ("DELETE", "users"),
        ("DELETE", "deleted_users"),
    ]
    # The proof of deletion: Zendesk's ids, never an address.
    logged = DeletionLog.objects.filter(run=run, customer_id=alice.pk, category="correspondence")
    tickets = logged.filter(model="zendesk.Ticket")
    assert sum(entry.count for entry in tickets) == 250  # a line for each job Zendesk confirmed
    assert sorted(i for entry in tickets for i in entry.record_ids) == sorted(alices)
    assert [entry.record_ids for entry in logged.filter(model="zendesk.User")] == [[alice_id]]
    assert set(ProcessorJob.objects.filter(customer_id=alice.pk).values_list("status", flat=True)) == {
        "completed"
    }
    assert ProcessorJob.objects.filter(customer_id=alice.pk, kind=ProcessorJob.ERASURE).count() == 1


def test_a_failed_deletion_job_is_recorded_and_retried(fake_zendesk: FakeZendesk, alice: Customer) -> None:
    alices = fake_zendesk.add_tickets(fake_zendesk.add_user("alice@example.no"), 3)
    fake_zendesk.fail_next_job.add("tickets.delete")
    connector = ZendeskConnector()

    first = alices_deletion(connector, alice, a_run())

    assert not first.complete
    assert "failed" in first.errors[0] and "alice" not in first.errors[0]
    job = ProcessorJob.objects.get(customer_id=alice.pk, kind="tickets.delete")
    assert (job.status, job.attempts, job.target_ids) == ("pending", 1, sorted(alices))
    assert "failed" in job.last_error and job.external_id
    assert fake_zendesk.live_tickets() == set(alices)
    assert not ProcessorJob.objects.filter(kind=ProcessorJob.ERASURE).exists()

    second = alices_deletion(connector, alice, a_run())

    assert second.complete, second.errors
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == ("completed", 2, "")
    assert not fake_zendesk.tickets


def test_a_job_still_running_is_polled_again_next_time_not_submitted_twice(
    fake_zendesk: FakeZendesk, alice: Customer, settings: Any
) -> None:
    fake_zendesk.add_tickets(fake_zendesk.add_user("alice@example.no"), 2)
    settings.ZENDESK_JOB_WAIT_SECONDS = 0
    fake_zendesk.job_polls = 1000

    first = alices_deletion(ZendeskConnector(), alice, a_run())

    assert not first.complete and "still" in first.errors[0]
    job = ProcessorJob.objects.get(customer_id=alice.pk, kind="tickets.delete")
    assert job.status == "submitted"
    fake_zendesk.jobs[job.external_id].states = ["completed"]
    settings.ZENDESK_JOB_WAIT_SECONDS = 5
    fake_zendesk.job_polls = 1

    second = alices_deletion(ZendeskConnector(), alice, a_run())

    assert second.complete, second.errors
    assert len(fake_zendesk.calls("DELETE", r"/api/v2/tickets/destroy_many\.json")) == 1


def test_deleting_a_customer_zendesk_does_not_know_is_complete_at_once(
    fake_zendesk: FakeZendesk, bob: Customer
) -> None:
    deletion = alices_deletion(ZendeskConnector(), bob, a_run())

    assert deletion.complete
    assert not fake_zendesk.calls("DELETE", r".*")


def test_the_check_wants_an_admins_token(fake_zendesk: FakeZendesk) -> None:
    assert ZendeskConnector().check_settings() == []
    fake_zendesk.me_role = "agent"

    (drift,) = ZendeskConnector().check_settings()

    assert (drift.expected, drift.actual) == ("admin", "agent")
    assert "admin" in drift.fix
