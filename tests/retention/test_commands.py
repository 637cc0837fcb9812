"""The operator's commands: `purge` (with its dry run) and `retention_report`.

Time travels only to days before the real today (see test_purges.py)."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import Correspondence, Customer, Invoice
from retention.models import DeletionLog, PurgeRun
from retention.purges.customers import CorrespondencePurge
from retention.selectors import upcoming_deletions
from retention.services import legal_hold_place
from tests.factories import ContactFactory, ContractFactory, CorrespondenceFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_today() -> Iterator[None]:
    with time_machine.travel(timezone.make_aware(datetime(2026, 6, 15, 12, 0)), tick=False):
        yield


def former_customer(name: str, ended_on: date, *, correspondence: bool = True) -> Customer:
    customer = CustomerFactory.create(name=name)
    ContactFactory.create(customer=customer)
    ContractFactory.create(customer=customer, started_on=date(2020, 1, 1), ended_on=ended_on)
    if correspondence:
        CorrespondenceFactory.create(customer=customer)
    return customer


def issue(customer: Customer | None, issued_on: date) -> Invoice:
    assert customer is not None
    return customer_services.invoice_create(
        customer=customer, lines=[("Hosting", Decimal("1"), Decimal("249.00"))], issue_on=issued_on
    )


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_prints_what_would_go_and_why_and_deletes_nothing(on_today: None) -> None:
    customer = former_customer("Forfalt AS", date(2026, 1, 31))
    output = purge("--dry-run")
    assert "customers.Correspondence: 1 (relationship ended before 03/15/2026 + 3 months)" in output
    assert "customers.Invoice: 0 (vouchers dated before 01/01/2021" in output
    assert output.count("nothing deleted") >= 5  # one per category
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert Correspondence.objects.filter(customer=customer).exists()
    assert not DeletionLog.objects.exists()


def test_a_dry_run_looks_ahead_to_a_future_day(on_today: None) -> None:
    former_customer("Senere AS", date(2026, 5, 31), correspondence=False)
    assert "customers.Customer: 0 " in purge("--dry-run", "--category", "customer_account")
    ahead = purge("--dry-run", "--category", "customer_account", "--as-of", "2026-09-01")
    assert "customers.Customer: 1 (relationship ended before 06/01/2026 + 3 months)" in ahead


def test_a_real_run_deletes_what_is_due_and_prints_the_counts(on_today: None) -> None:
    gone = former_customer("Forfalt AS", date(2026, 1, 31))
    kept = former_customer("Senere AS", date(2026, 5, 31))
    output = purge()
    assert "correspondence: Finished" in output
    assert "customers.Correspondence: 1 deleted" in output
    assert "customers.Customer: 1 deleted" in output
    assert "customers.Contact: 1 deleted" in output
    assert "1 batch, longest" in output
    assert not Customer.objects.filter(pk=gone.pk).exists()
    assert Customer.objects.filter(pk=kept.pk).exists()
    runs = PurgeRun.objects.filter(dry_run=False)
    assert (
        runs.filter(category="customer_account", status=PurgeRun.Status.FINISHED)
        .get()
        .counts["customers.Customer"]
        == 1
    )


def test_one_category_at_a_time(on_today: None) -> None:
    customer = former_customer("Forfalt AS", date(2026, 1, 31))
    output = purge("--category", "correspondence")
    assert "customers.Correspondence: 1 deleted" in output
    assert "customer_account" not in output
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert not Correspondence.objects.filter(customer=customer).exists()


def test_a_real_run_for_a_future_day_is_refused_with_the_reason() -> None:
    future = (timezone.localdate() + timedelta(days=30)).isoformat()
    with pytest.raises(CommandError, match="only a dry run can look at a day in the future"):
        purge("--as-of", future)
    assert not PurgeRun.objects.exists()


@pytest.mark.parametrize("value", ["2026-02-30", "15.06.2026", "tomorrow"])
def test_a_bad_day_is_refused(value: str) -> None:
    with pytest.raises(CommandError, match="use YYYY-MM-DD"):
        purge("--dry-run", "--as-of", value)


def test_an_unknown_category_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(
        CommandError, match=r"unknown category 'invoice'; choose from .*invoices.*customer_account"
    ):
        purge("--category", "invoice")


def test_a_failed_run_exits_non_zero(on_today: None, monkeypatch: pytest.MonkeyPatch) -> None:
    former_customer("Forfalt AS", date(2026, 1, 31))

    def broken(self: Any, **kwargs: Any) -> None:
        raise RuntimeError("Zendesk did not answer")

    monkeypatch.setattr(CorrespondencePurge, "delete_batch", broken)
    with pytest.raises(
        CommandError, match="correspondence: purge failed: RuntimeError: Zendesk did not answer"
    ):
        purge("--category", "correspondence")
    assert PurgeRun.objects.get(category="correspondence").status == PurgeRun.Status.FAILED


def test_upcoming_deletions_count_customers_invoices_and_audit_events_per_month(on_today: None) -> None:
    # Customers: one overdue (counts in June), one in July, one in August without correspondence,
    # one held (never counted), one active and one registered today (September: beyond the report).
    former_customer("Forfalt AS", date(2025, 1, 31))
    july = former_customer("Juli AS", date(2026, 4, 10))  # deletable 11 July
    former_customer("August AS", date(2026, 5, 20), correspondence=False)  # deletable 21 August
    held = former_customer("Holdt AS", date(2025, 1, 31))
    legal_hold_place(customer=held, reason="Tvist", ends_on=None, placed_by=None)
    ContractFactory.create()
    CustomerFactory.create()
    # Invoices: 2020's go on 1 January 2026 (overdue, so June); a 2020 invoice paid in 2021 goes on
    # 1 January 2027, beyond a three-month report; the held customer's invoice is not counted.
    issue(july, date(2020, 5, 5))
    late_paid = issue(july, date(2020, 11, 20))
    customer_services.payment_register(invoice=late_paid, amount=Decimal("249"), paid_on=date(2021, 1, 10))
    issue(held, date(2019, 3, 1))
    # Audit events go 24 months after they were written.
    for created in (datetime(2024, 1, 1, 12), datetime(2024, 7, 20, 12), datetime(2024, 8, 31, 12)):
        AuditEvent.objects.create(
            kind=AuditEvent.Kind.CUSTOMER_VIEWED, created_at=timezone.make_aware(created)
        )

    report = upcoming_deletions(months=3)
    assert report.months == [date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1)]
    counts = {row.category_key: row.counts for row in report.rows}
    assert counts["customer_account"] == [1, 1, 1]
    assert counts["contracts"] == [1, 1, 1]
    assert counts["correspondence"] == [1, 1, 0]
    assert counts["invoices"] == [1, 0, 0]
    # 20 July 2024 is past its window on 21 July 2026; 31 August 2024 on 1 September 2026.
    assert counts["sessions_and_audit"] == [1, 1, 0]

    year = {row.category_key: row.counts for row in upcoming_deletions(months=12).rows}
    assert year["invoices"][7] == 1  # January 2027
    assert year["sessions_and_audit"][3] == 1  # September 2026


def test_the_report_prints_a_table(on_today: None) -> None:
    former_customer("Juli AS", date(2026, 4, 10))
    out = StringIO()
    call_command("retention_report", "--months", "3", stdout=out)
    lines = out.getvalue().splitlines()
    assert "2026-06" in lines[1] and "2026-08" in lines[1] and "total" in lines[1]
    account = next(line for line in lines if line.startswith("Customer account"))
    assert account.split()[-4:] == ["0", "1", "0", "1"]
    with pytest.raises(CommandError, match="at least 1"):
        call_command("retention_report", "--months", "0")
