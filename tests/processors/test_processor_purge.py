"""The correspondence purge deletes a former customer's data at the processors first, while her
e-mail addresses are still here; a processor that is down or fails keeps her rows (and so her
account) for the next run, which picks up where the processor left off.

Committed data (`transaction=True`): the processor steps are recorded on a connection of their own,
so they survive whatever becomes of the purge batch's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from customers.models import Correspondence, Customer
from processors.models import ProcessorJob
from retention.models import AnalyticsIdentifier, DeletionLog, PurgeRun
from retention.services import purge_preview, purge_run
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    UserFactory,
)
from tests.processors.fakes import FakeGoogle, FakeZendesk

pytestmark = pytest.mark.django_db(transaction=True)


def former_customer(email: str, *, correspondence: int = 2, name: str = "Fjellvann AS") -> Customer:
    """A customer whose last contract ended 200 days ago: past the 3-month window."""
    customer = CustomerFactory.create(name=name, email=email, user=UserFactory.create())
    ended = timezone.localdate() - timedelta(days=200)
    ContractFactory.create(customer=customer, started_on=ended - timedelta(days=400), ended_on=ended)
    ContactFactory.create(customer=customer, email=f"regnskap.{email}")
    for _ in range(correspondence):
        CorrespondenceFactory.create(customer=customer)
    return customer


@pytest.fixture
def fjellvann(fake_zendesk: FakeZendesk) -> tuple[Customer, list[int]]:
    customer = former_customer("post@fjellvann.example.no")
    tickets = fake_zendesk.add_tickets(fake_zendesk.add_user("post@fjellvann.example.no"), 120)
    tickets += fake_zendesk.add_tickets(fake_zendesk.add_user("regnskap.post@fjellvann.example.no"), 3)
    return customer, tickets


def test_zendesk_down_during_the_purge_keeps_her_data_and_the_next_run_finishes(
    fake_zendesk: FakeZendesk, fjellvann: tuple[Customer, list[int]]
) -> None:
    customer, tickets = fjellvann
    fake_zendesk.down = True

    first = purge_run(category="correspondence")

    assert first.status == PurgeRun.Status.FINISHED
    assert len(first.errors) == 1
    assert first.errors[0].startswith(f"customer {customer.pk}: zendesk: search tickets: RetryError")
    assert Correspondence.objects.filter(customer=customer).count() == 2
    assert first.counts.get("customers.Correspondence", 0) == 0
    # Her account waits for her correspondence, which waits for Zendesk.
    purge_run(category="customer_account")
    assert Customer.objects.filter(pk=customer.pk).exists()

    fake_zendesk.down = False
    second = purge_run(category="correspondence")

    assert second.errors == []
    assert second.counts["zendesk.Ticket"] == 123
    assert second.counts["zendesk.User"] == 2
    assert second.counts["customers.Correspondence"] == 2
    assert not set(tickets) & set(fake_zendesk.tickets)
    assert (
        ProcessorJob.objects.filter(customer_id=customer.pk, kind="erasure", status="completed").count() == 1
    )
    purge_run(category="customer_account")
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_a_failed_permanent_deletion_is_retried_from_its_job_though_zendesk_no_longer_finds_the_tickets(
    fake_zendesk: FakeZendesk, fjellvann: tuple[Customer, list[int]]
) -> None:
    customer, tickets = fjellvann
    fake_zendesk.fail_next_job.add("tickets.purge")

    first = purge_run(category="correspondence")

    assert any("purge tickets" in error and "failed" in error for error in first.errors)
    # Deleted, so Zendesk's search no longer finds them; the pending job still knows their ids.
    assert fake_zendesk.live_tickets() == set()
    assert fake_zendesk.soft_deleted_tickets() == set(tickets)
    pending = ProcessorJob.objects.filter(customer_id=customer.pk, kind="tickets.purge").exclude(
        status="completed"
    )
    assert sorted(i for job in pending for i in job.target_ids) == sorted(tickets)
    assert Correspondence.objects.filter(customer=customer).exists()

    second = purge_run(category="correspondence")

    assert second.errors == []
    assert fake_zendesk.tickets == {}
    assert not Correspondence.objects.filter(customer=customer).exists()
    logged = DeletionLog.objects.filter(customer_id=customer.pk, model="zendesk.Ticket")
    assert sorted(i for entry in logged for i in entry.record_ids) == sorted(tickets)


def test_a_customer_without_correspondence_here_is_still_erased_at_zendesk_before_her_account_goes(
    fake_zendesk: FakeZendesk,
) -> None:
    customer = former_customer("ola@nordmann.example.no", correspondence=0, name="Ola Nordmann")
    tickets = fake_zendesk.add_tickets(fake_zendesk.add_user("ola@nordmann.example.no"), 2)

    purge_run(category="customer_account")
    assert Customer.objects.filter(pk=customer.pk).exists()  # Zendesk has not been asked yet

    purge_run(category="correspondence")
    purge_run(category="customer_account")

    assert not set(tickets) & set(fake_zendesk.tickets)
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_one_outage_is_not_waited_out_for_every_customer_of_the_batch(fake_zendesk: FakeZendesk) -> None:
    customers = [former_customer(f"kunde{n}@example.no", name=f"Kunde {n} AS") for n in range(3)]
    fake_zendesk.down = True

    run = purge_run(category="correspondence")

    searches = fake_zendesk.calls("GET", "/api/v2/search/export.json")
    assert len(searches) == 4  # one customer's first search, and the transport's three retries
    assert run.errors[-1] == (
        f"zendesk: unavailable (customer {customers[0].pk}: zendesk: search tickets: RetryError); "
        "2 more customers of this batch wait for the next run"
    )
    assert Correspondence.objects.count() == 6


def test_her_analytics_id_goes_to_google_then_away(
    fake_google: FakeGoogle, settings: Any, no_zendesk: None
) -> None:
    customer = former_customer("kari@example.no", name="Kari Nordmann")
    AnalyticsIdentifier.objects.create(customer=customer, client_id="555.666")

    run = purge_run(category="correspondence")

    assert run.errors == []
    assert [request["id"]["userId"] for request in fake_google.deletion_requests] == ["555.666"]
    assert run.counts["google_analytics.UserDeletionRequest"] == 1
    assert run.counts["retention.AnalyticsIdentifier"] == 1
    assert not AnalyticsIdentifier.objects.exists()
    assert DeletionLog.objects.filter(
        run=run, model="retention.AnalyticsIdentifier", category="web_analytics", customer_id=customer.pk
    ).exists()


def test_without_processors_the_purge_is_what_it_was(no_processors: None) -> None:
    customer = former_customer("per@example.no", name="Per AS")

    run = purge_run(category="correspondence")

    assert run.counts == {"customers.Correspondence": 2}
    assert not Correspondence.objects.filter(customer=customer).exists()
    assert not ProcessorJob.objects.exists()


def test_the_preview_counts_the_customers_to_erase_at_each_processor(
    fake_zendesk: FakeZendesk, fjellvann: tuple[Customer, list[int]]
) -> None:
    former_customer("ola@nordmann.example.no", correspondence=0, name="Ola Nordmann")

    lines = {line.model: line.count for line in purge_preview(category="correspondence")}

    assert lines["customers.Correspondence"] == 2
    assert lines["zendesk (customers)"] == 2
    assert fake_zendesk.requests == []  # a preview asks no processor anything
