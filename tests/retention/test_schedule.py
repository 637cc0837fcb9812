"""A customer's deletion schedule: what goes when, and the reason staff and the customer read.

The pure schedule is checked at month ends and leap days and against the purge's own cutoff; the
selectors are checked to load the same facts from the database in one query for many customers."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from customers import services as customer_services
from customers.models import Customer, Invoice
from customers.relationship import Relationship, RelationshipStatus
from retention.purges.customers import customer_data_cutoff, due_customers
from retention.schedule import ScheduledDeletion, deletion_schedule, scheduled
from retention.selectors import (
    DeletionDue,
    customer_deletion_schedule,
    customers_by_deletion_due,
    customers_with_deletion_facts,
    deletion_schedule_of,
)
from retention.services import legal_hold_place
from retention.windows import RetentionPeriods
from tests.factories import ContractFactory, CustomerFactory

PERIODS = RetentionPeriods()
ACTIVE = Relationship(RelationshipStatus.ACTIVE)
NO_CONTRACT = Relationship(RelationshipStatus.NO_CONTRACT)


def ended(day: date) -> Relationship:
    return Relationship(RelationshipStatus.ENDED, ended_on=day)


def schedule_of(
    relationship: Relationship,
    *,
    created_on: date = date(2020, 1, 1),
    latest_voucher_on: date | None = None,
    on_hold: bool = False,
    hold_ends_on: date | None = None,
) -> dict[str, ScheduledDeletion]:
    items = deletion_schedule(
        relationship=relationship,
        created_on=created_on,
        latest_voucher_on=latest_voucher_on,
        on_hold=on_hold,
        hold_ends_on=hold_ends_on,
        periods=PERIODS,
    )
    return {item.category_key: item for item in items}


def test_an_active_customer_has_nothing_scheduled_and_is_told_why() -> None:
    schedule = schedule_of(ACTIVE)
    assert set(schedule) == {"customer_account", "contracts", "correspondence"}
    for item in schedule.values():
        assert item.deletable_on is None
        assert item.reason == "kept while the customer relationship is active"


def test_customer_data_goes_three_months_after_the_relationship_ended() -> None:
    schedule = schedule_of(ended(date(2025, 5, 31)))
    for key in ("customer_account", "contracts", "correspondence"):
        assert schedule[key].deletable_on == date(2025, 9, 1)
        assert schedule[key].kept_until == date(2025, 8, 31)
    assert schedule["customer_account"].reason == (
        "kept until 08/31/2025, 3 months after the relationship ended 05/31/2025"
    )
    assert "invoices" not in schedule


@pytest.mark.parametrize(
    ("ended_on", "deletable_on"),
    [
        (date(2025, 11, 30), date(2026, 3, 1)),  # 28 February is the last day kept
        (date(2027, 11, 30), date(2028, 3, 1)),  # 29 February in a leap year
        (date(2027, 11, 29), date(2028, 3, 1)),
        (date(2027, 11, 28), date(2028, 2, 29)),
        (date(2025, 8, 31), date(2025, 12, 1)),  # 30 November is the clamped day
        (date(2024, 2, 29), date(2024, 5, 30)),  # leap day itself
        (date(2025, 12, 31), date(2026, 4, 1)),  # over the new year
    ],
)
def test_month_ends_and_leap_days(ended_on: date, deletable_on: date) -> None:
    assert schedule_of(ended(ended_on))["customer_account"].deletable_on == deletable_on


def test_a_customer_without_a_contract_counts_from_the_day_they_were_registered() -> None:
    schedule = schedule_of(NO_CONTRACT, created_on=date(2026, 1, 31))
    assert schedule["customer_account"].deletable_on == date(2026, 5, 1)
    assert "registered 01/31/2026" in schedule["customer_account"].reason


def test_invoices_are_held_to_the_end_of_the_fifth_financial_year_after_the_latest_voucher() -> None:
    schedule = schedule_of(ended(date(2026, 5, 31)), latest_voucher_on=date(2026, 3, 10))
    assert schedule["customer_account"].deletable_on == date(2026, 9, 1)
    assert schedule["invoices"].deletable_on == date(2032, 1, 1)
    assert schedule["invoices"].reason == "invoices held until 12/31/2031, bokføringsloven § 13"
    assert "an agreement an invoice refers to is kept as long as the invoice" in schedule["contracts"].reason


def test_a_leap_day_voucher_counts_from_the_end_of_its_year() -> None:
    schedule = schedule_of(ACTIVE, latest_voucher_on=date(2024, 2, 29))
    assert schedule["invoices"].deletable_on == date(2030, 1, 1)
    assert schedule["customer_account"].deletable_on is None


def test_reasons_read_in_norwegian_date_format_in_norwegian() -> None:
    with translation.override("nb"):
        schedule = schedule_of(ended(date(2026, 5, 31)), latest_voucher_on=date(2026, 3, 10))
    assert "31.12.2031" in schedule["invoices"].reason
    assert "§ 13" in schedule["invoices"].reason
    assert "31.08.2026" in schedule["customer_account"].reason


def test_a_legal_hold_stops_every_deletion_and_names_itself() -> None:
    until_released = schedule_of(ended(date(2020, 1, 31)), latest_voucher_on=date(2019, 5, 1), on_hold=True)
    assert set(until_released) == {"customer_account", "contracts", "correspondence", "invoices"}
    for item in until_released.values():
        assert item.deletable_on is None
        assert item.reason == "on legal hold until it is released"
    with_end = schedule_of(NO_CONTRACT, on_hold=True, hold_ends_on=date(2027, 6, 30))
    assert with_end["correspondence"].reason == "on legal hold until 06/30/2027"


@settings(max_examples=500, deadline=None)
@given(
    ended_on=st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)),
    offset=st.integers(min_value=-200, max_value=200),
)
def test_the_schedule_and_the_purge_cutoff_agree_on_every_day(ended_on: date, offset: int) -> None:
    deletable_on = schedule_of(ended(ended_on))["customer_account"].deletable_on
    assert deletable_on is not None
    today = deletable_on + timedelta(days=offset)
    due_by_purge = ended_on < customer_data_cutoff(today=today, periods=PERIODS)
    assert due_by_purge == (deletable_on <= today)


# --- Selectors ---------------------------------------------------------------------------------


def on(day: date) -> time_machine.travel:
    return time_machine.travel(
        timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 12, 0)), tick=False
    )


def former_customer(ended_on: date, **kwargs: object) -> Customer:
    customer = CustomerFactory.create(**kwargs)
    ContractFactory.create(customer=customer, started_on=date(2020, 1, 1), ended_on=ended_on)
    return customer


def issue(customer: Customer, issued_on: date) -> Invoice:
    return customer_services.invoice_create(
        customer=customer, lines=[("Hosting", Decimal("1"), Decimal("249.00"))], issue_on=issued_on
    )


@pytest.mark.django_db
def test_one_customers_schedule_is_read_from_the_database() -> None:
    with on(date(2026, 6, 15)):
        customer = former_customer(date(2026, 4, 30))
        invoice = issue(customer, date(2025, 11, 3))
        customer_services.payment_register(invoice=invoice, amount=Decimal("100"), paid_on=date(2026, 1, 5))
        schedule = {item.category_key: item for item in customer_deletion_schedule(customer=customer)}
    assert schedule["customer_account"].deletable_on == date(2026, 7, 31)
    # The payment in 2026 moves the invoices to the end of 2031, not 2030.
    assert schedule["invoices"].deletable_on == date(2032, 1, 1)


@pytest.mark.django_db
def test_the_longest_active_hold_decides_and_a_released_one_does_not_count(django_user_model: type) -> None:
    staff = django_user_model.objects.create(username="staff", is_staff=True)
    with on(date(2026, 6, 15)):
        customer = former_customer(date(2025, 1, 31))
        released = legal_hold_place(customer=customer, reason="old dispute", ends_on=None, placed_by=staff)
        released.released_at = timezone.now()
        released.save()
        ended_hold = legal_hold_place(
            customer=customer, reason="ended", ends_on=date(2026, 6, 1), placed_by=staff
        )
        assert ended_hold.pk
        assert scheduled(
            customer_deletion_schedule(customer=customer), "customer_account"
        ) == ScheduledDeletion(
            "customer_account",
            date(2025, 5, 1),
            "kept until 04/30/2025, 3 months after the relationship ended 01/31/2025",
        )
        legal_hold_place(customer=customer, reason="police", ends_on=date(2026, 12, 31), placed_by=staff)
        legal_hold_place(customer=customer, reason="court", ends_on=date(2027, 3, 31), placed_by=staff)
        item = scheduled(customer_deletion_schedule(customer=customer), "customer_account")
    assert item is not None
    assert item.deletable_on is None
    assert item.reason == "on legal hold until 03/31/2027"


@pytest.mark.django_db
def test_facts_for_many_customers_take_one_query() -> None:
    for index in range(20):
        customer = former_customer(date(2025, 1, 31) + timedelta(days=index))
        issue(customer, date(2025, 1, 15))
    with CaptureQueriesContext(connection) as queries:
        schedules = [deletion_schedule_of(customer=customer) for customer in customers_with_deletion_facts()]
    assert len(queries) == 1
    assert len(schedules) == 20
    assert all(scheduled(schedule, "invoices") for schedule in schedules)


@pytest.mark.django_db
def test_overdue_customers_are_exactly_the_ones_the_purge_takes(django_user_model: type) -> None:
    staff = django_user_model.objects.create(username="staff", is_staff=True)
    with on(date(2026, 6, 15)):
        former_customer(date(2026, 3, 14))  # deletable today
        former_customer(date(2026, 3, 15))  # deletable tomorrow
        former_customer(date(2025, 1, 31))
        held = former_customer(date(2025, 1, 31))
        legal_hold_place(customer=held, reason="dispute", ends_on=None, placed_by=staff)
        ContractFactory.create()  # active
        today = timezone.localdate()
        overdue = customers_by_deletion_due(queryset=Customer.objects.all(), due=DeletionDue.OVERDUE)
        purged = due_customers(today=today, periods=PERIODS)
        assert set(overdue.values_list("pk", flat=True)) == set(purged.values_list("pk", flat=True))
        assert overdue.count() == 2
        for customer in overdue:
            item = scheduled(deletion_schedule_of(customer=customer), "customer_account")
            assert item is not None and item.deletable_on is not None and item.deletable_on <= today
