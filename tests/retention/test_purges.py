"""What each purge deletes, keeps, and writes down, told as stories about customers.

Time travels only to days before the real today: the database's triggers count from its own
clock, and anything past its window on an earlier day is past it on a later one too."""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import Contact, Contract, Correspondence, Customer, Invoice, InvoiceLine, Payment
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.services import (
    PurgeRefused,
    _lock_key,
    legal_hold_place,
    legal_hold_release,
    purge_all,
    purge_run,
)
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def on(day: date) -> Any:
    return time_machine.travel(
        timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 3, 0)), tick=False
    )


def former_customer(*, ended_on: date, name: str = "Fjellvann AS") -> Customer:
    customer = CustomerFactory.create(name=name, user=UserFactory.create())
    ContactFactory.create(customer=customer)
    ContractFactory.create(customer=customer, started_on=ended_on - timedelta(days=400), ended_on=ended_on)
    CorrespondenceFactory.create(customer=customer)
    return customer


def issue(customer: Customer, issued_on: date, *, contract: Contract | None = None) -> Invoice:
    return customer_services.invoice_create(
        customer=customer,
        lines=[("WordPress hosting", Decimal("1"), Decimal("249.00"))],
        contract_id=contract.pk if contract else None,
        issue_on=issued_on,
    )


def test_account_data_goes_three_months_after_the_relationship_ended_and_not_a_day_before() -> None:
    customer = former_customer(ended_on=date(2025, 5, 31))
    with on(date(2025, 8, 31)):
        purge_all()
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert Correspondence.objects.filter(customer=customer).exists()
    with on(date(2025, 9, 1)):
        purge_all()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Contact.objects.filter(customer_id=customer.pk).exists()
    assert not Correspondence.objects.filter(customer_id=customer.pk).exists()
    assert not Contract.objects.filter(customer_id=customer.pk).exists()
    assert customer.user is not None
    assert not type(customer.user).objects.filter(pk=customer.user.pk).exists()


def test_invoices_outlive_the_account_with_their_billing_snapshot_then_go() -> None:
    customer = former_customer(ended_on=date(2019, 6, 30))
    contract = customer.contracts.get()
    invoice = issue(customer, date(2019, 6, 1), contract=contract)
    customer_services.payment_register(invoice=invoice, amount=Decimal("311.25"), paid_on=date(2020, 1, 10))
    with on(date(2020, 1, 15)):
        purge_all()
    invoice.refresh_from_db()
    assert invoice.customer_id is None
    assert invoice.billing_name == "Fjellvann AS"
    contract.refresh_from_db()
    assert contract.customer_id is None  # primary documentation: the invoice refers to it
    # The payment in 2020 keeps the invoice until the end of 2025.
    with on(date(2025, 12, 31)):
        purge_all()
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    with on(date(2026, 1, 1)):
        purge_all()
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert not InvoiceLine.objects.filter(invoice_id=invoice.pk).exists()
    assert not Payment.objects.filter(invoice_id=invoice.pk).exists()
    assert not Contract.objects.filter(pk=contract.pk).exists()


def test_an_invoice_goes_with_the_credit_note_that_cancels_it() -> None:
    customer = CustomerFactory.create()
    invoice = issue(customer, date(2018, 12, 20))
    note = customer_services.credit_note_create(invoice=invoice, issued_on=date(2019, 1, 3))
    with on(date(2024, 6, 1)):  # the invoice's year has ended + 5, the credit note's has not
        purge_run(category="invoices")
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    with on(date(2025, 1, 1)):
        run = purge_run(category="invoices")
    assert not Invoice.objects.filter(pk__in=[invoice.pk, note.pk]).exists()
    assert run.counts["customers.Invoice"] == 2


def test_a_new_contract_cancels_a_pending_deletion() -> None:
    customer = former_customer(ended_on=date(2025, 3, 31))
    ContractFactory.create(customer=customer, started_on=date(2025, 6, 1), ended_on=None)
    with on(date(2025, 11, 1)):
        purge_all()
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert customer.correspondence.exists()


def test_a_legal_hold_stops_every_purge_of_the_customer_until_released(support_user: Any) -> None:
    customer = former_customer(ended_on=date(2017, 1, 31))
    invoice = issue(customer, date(2016, 5, 1))
    hold = legal_hold_place(
        customer=customer, reason="Tvist om faktura", ends_on=None, placed_by=support_user
    )
    with on(date(2025, 1, 1)):
        purge_all()
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    assert customer.correspondence.exists()
    legal_hold_release(hold=hold, released_by=support_user)
    with on(date(2025, 1, 2)):
        purge_all()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    kinds = list(AuditEvent.objects.filter(customer_id=customer.pk).values_list("kind", flat=True))
    assert sorted(kinds) == ["hold_placed", "hold_released"]


def test_a_hold_that_has_ended_no_longer_holds() -> None:
    customer = former_customer(ended_on=date(2017, 1, 31))
    LegalHold.objects.create(customer=customer, reason="Frist", ends_on=date(2024, 12, 31))
    with on(date(2025, 1, 1)):
        purge_all()
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_a_customer_who_never_had_a_contract_goes_three_months_after_creation() -> None:
    with on(date(2025, 1, 15)):
        prospect = CustomerFactory.create(name="Prospekt AS")
    with on(date(2025, 4, 15)):
        purge_all()
    assert Customer.objects.filter(pk=prospect.pk).exists()
    with on(date(2025, 4, 16)):
        purge_all()
    assert not Customer.objects.filter(pk=prospect.pk).exists()


def test_the_account_waits_for_its_correspondence() -> None:
    customer = former_customer(ended_on=date(2024, 1, 31))
    with on(date(2025, 1, 1)):
        run = purge_run(category="customer_account")
    assert run.counts.get("customers.Customer", 0) == 0
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_every_deleted_row_is_in_the_deletion_log_without_personal_data() -> None:
    customers = [former_customer(ended_on=date(2018, 3, 31), name=f"Loggført {n} AS") for n in range(3)]
    for customer in customers:
        issue(customer, date(2018, 2, 1))
    with on(date(2025, 2, 1)):
        runs = purge_all()
    deleted = sum(sum(run.counts.values()) for run in runs)
    logged = sum(DeletionLog.objects.values_list("count", flat=True))
    assert deleted == logged > 0
    per_customer = DeletionLog.objects.filter(model="customers.Customer")
    logged_customers = {customer_id for customer_id in per_customer.values_list("customer_id", flat=True)}
    assert logged_customers == {c.pk for c in customers}
    assert per_customer.count() == len(customers)
    for entry in DeletionLog.objects.all():
        text = f"{entry.model} {entry.rule} {entry.category} {entry.record_ids}"
        assert "Loggført" not in text and "@" not in text


def test_purge_runs_record_counts_batches_and_duration() -> None:
    for n in range(5):
        former_customer(ended_on=date(2024, 1, 31), name=f"Batch {n} AS")
    with on(date(2025, 1, 1)):
        run = purge_run(category="correspondence", batch_size=2)
    assert run.status == PurgeRun.Status.FINISHED
    assert run.batches == 3
    assert run.counts == {"customers.Correspondence": 5}
    assert run.as_of == date(2025, 1, 1)
    assert run.duration_seconds is not None and run.longest_batch_seconds <= run.duration_seconds


def test_a_dry_run_deletes_nothing_and_says_what_would_go() -> None:
    customer = former_customer(ended_on=date(2024, 1, 31))
    run = purge_run(category="correspondence", dry_run=True, as_of=date(2027, 1, 1))
    assert run.dry_run and run.counts == {"customers.Correspondence": 1}
    assert customer.correspondence.count() == 1
    assert not DeletionLog.objects.exists()


def test_a_real_purge_never_runs_for_a_future_day() -> None:
    with pytest.raises(PurgeRefused, match="dry run"):
        purge_run(category="invoices", as_of=timezone.localdate() + timedelta(days=1))
    with pytest.raises(PurgeRefused, match="no purge for category"):
        purge_run(category="everything")


@pytest.fixture
def other_connection() -> Iterator[Any]:
    other = connections.create_connection("default")
    try:
        yield other
    finally:
        other.close()


def test_a_second_run_skips_while_the_first_holds_the_lock(other_connection: Any) -> None:
    customer = former_customer(ended_on=date(2024, 1, 31))
    with other_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key("purge:correspondence")])
    run = purge_run(category="correspondence")
    assert run.status == PurgeRun.Status.SKIPPED
    assert customer.correspondence.count() == 1
    with other_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key("purge:correspondence")])
    assert purge_run(category="correspondence").counts == {"customers.Correspondence": 1}


def test_an_interrupted_run_is_closed_by_the_next_with_counts_from_its_log() -> None:
    stale = PurgeRun.objects.create(category="invoices", as_of=date(2025, 1, 1))
    DeletionLog.objects.create(run=stale, category="invoices", model="customers.Invoice", count=7, rule="x")
    purge_run(category="invoices")
    stale.refresh_from_db()
    assert stale.status == PurgeRun.Status.FAILED
    assert stale.counts == {"customers.Invoice": 7}
    assert "interrupted" in stale.errors[0]


def test_old_audit_events_and_expired_sessions_go() -> None:
    old = AuditEvent.objects.create(kind=AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=1,
                                    created_at=timezone.now() - timedelta(days=800))  # fmt: skip
    recent = AuditEvent.objects.create(kind=AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) "
            "VALUES ('gone', '', now() - interval '1 day'), ('kept', '', now() + interval '1 day')"
        )
    run = purge_run(category="sessions_and_audit")
    assert run.counts == {"audit.AuditEvent": 1, "sessions.Session": 1}
    assert not AuditEvent.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()


def test_the_sign_ins_of_contacts_go_with_the_customer() -> None:
    customer = former_customer(ended_on=date(2024, 1, 31))
    contact_user = UserFactory.create()
    ContactFactory.create(customer=customer, user=contact_user, portal_access=True)
    with on(date(2025, 1, 1)):
        purge_all()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not type(contact_user).objects.filter(pk=contact_user.pk).exists()
    # One line per customer and category, naming both sign-ins.
    logged = DeletionLog.objects.filter(model="auth.User", customer_id=customer.pk)
    assert logged.count() == 1 and logged.get().count == 2


def test_a_customer_who_asked_for_her_copy_herself_is_still_purged_and_the_event_stays() -> None:
    """Her own request is in the audit trail with her sign-in as the actor; her sign-in goes with
    her account, and the append-only trail lets the database clear that one reference (nothing
    else about the event may change)."""
    customer = former_customer(ended_on=date(2025, 5, 31))
    event = AuditEvent.record(AuditEvent.Kind.ACCESS_REQUESTED, actor=customer.user, customer_id=customer.pk)

    with on(date(2025, 9, 1)):
        purge_all()

    assert not Customer.objects.filter(pk=customer.pk).exists()
    event.refresh_from_db()
    assert event.actor_id is None and event.customer_id == customer.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(customer_id=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_id=UserFactory.create().pk)
