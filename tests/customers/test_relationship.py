"""The relationship status, in Python and in SQL, at month ends and with overlapping contracts."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from customers.models import Customer
from customers.relationship import Relationship, RelationshipStatus, relationship_on
from tests.factories import ContractFactory, CustomerFactory

ACTIVE = Relationship(RelationshipStatus.ACTIVE)


def test_a_contract_ending_today_is_still_active() -> None:
    assert relationship_on([date(2026, 1, 31)], today=date(2026, 1, 31)) == ACTIVE


def test_the_relationship_ends_the_day_after_the_last_day_of_service() -> None:
    assert relationship_on([date(2026, 1, 31)], today=date(2026, 2, 1)) == Relationship(
        RelationshipStatus.ENDED, date(2026, 1, 31)
    )


def test_leap_day_end() -> None:
    assert relationship_on([date(2024, 2, 29)], today=date(2024, 3, 1)).ended_on == date(2024, 2, 29)


def test_overlapping_contracts_end_with_the_last_one() -> None:
    ends = [date(2025, 12, 31), date(2026, 3, 31), date(2026, 2, 28)]
    assert relationship_on(ends, today=date(2026, 4, 1)).ended_on == date(2026, 3, 31)
    assert relationship_on(ends, today=date(2026, 3, 31)) == ACTIVE


def test_an_open_ended_contract_keeps_the_relationship_active() -> None:
    assert relationship_on([date(2020, 1, 31), None], today=date(2026, 8, 31)) == ACTIVE


def test_no_contract_is_no_relationship() -> None:
    assert relationship_on([], today=date(2026, 1, 1)).status is RelationshipStatus.NO_CONTRACT


def test_a_new_contract_revives_an_ended_relationship(db: None) -> None:
    customer = CustomerFactory.create()
    ContractFactory.create(customer=customer, started_on=date(2024, 1, 1), ended_on=date(2025, 8, 31))
    assert customer.relationship(today=date(2025, 10, 1)).status is RelationshipStatus.ENDED
    ContractFactory.create(customer=customer, started_on=date(2025, 10, 1), ended_on=None)
    assert customer.relationship(today=date(2025, 10, 1)) == ACTIVE


end_dates = st.lists(
    st.one_of(st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31))), max_size=4
)
month_ends = st.sampled_from(
    [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 1, 31),
        date(2026, 4, 30),
        date(2026, 8, 31),
        date(2026, 12, 31),
    ]
)


class TestSqlAnnotationMatchesPython(HypothesisTestCase):
    """`Customer.objects.with_relationship()` must say what `relationship_on` says."""

    @settings(max_examples=150, deadline=None)
    @given(ends=end_dates, today=st.one_of(month_ends, st.dates(date(2021, 1, 1), date(2028, 1, 1))))
    def test_same_status_and_end_date(self, ends: list[date | None], today: date) -> None:
        customer = CustomerFactory.create()
        for ended_on in ends:
            started_on = (ended_on or today) - timedelta(days=30)
            ContractFactory.create(customer=customer, started_on=started_on, ended_on=ended_on)
        expected = relationship_on(ends, today=today)
        annotated = Customer.objects.with_relationship(today=today).get(pk=customer.pk)
        assert annotated.relationship_status == expected.status.value
        assert annotated.relationship_ended_on == expected.ended_on


@pytest.mark.parametrize("day", [date(2026, 1, 31), date(2026, 2, 28), date(2028, 2, 29)])
def test_month_end_boundaries_in_sql(db: None, day: date) -> None:
    customer = CustomerFactory.create()
    ContractFactory.create(customer=customer, started_on=day - timedelta(days=60), ended_on=day)
    on_the_day = Customer.objects.with_relationship(today=day).get(pk=customer.pk)
    day_after = Customer.objects.with_relationship(today=day + timedelta(days=1)).get(pk=customer.pk)
    assert on_the_day.relationship_status == "active"
    assert (day_after.relationship_status, day_after.relationship_ended_on) == ("ended", day)
