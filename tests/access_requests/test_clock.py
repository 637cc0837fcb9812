"""The GDPR clock (art. 12(3)): one calendar month from receipt, clamped to the month's last day;
extendable once, by two further months, while the first month runs."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from access_requests import services
from access_requests.clock import can_extend, gdpr_due_date, gdpr_extended_due_date
from access_requests.models import AccessRequest
from customers.models import Customer

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))


def last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@settings(max_examples=1000)
@given(received=days)
def test_due_is_the_same_day_next_month_or_that_months_last_day(received: date) -> None:
    due = gdpr_due_date(received)
    next_month = (received.year + received.month // 12, received.month % 12 + 1)
    assert (due.year, due.month) == next_month
    assert due.day == min(received.day, last_day(*next_month))
    assert 28 <= (due - received).days <= 31


@settings(max_examples=1000)
@given(received=days)
def test_the_extended_due_date_is_three_months_from_receipt(received: date) -> None:
    due, extended = gdpr_due_date(received), gdpr_extended_due_date(received)
    month_index = received.month - 1 + 3
    year, month = received.year + month_index // 12, month_index % 12 + 1
    assert extended == date(year, month, min(received.day, last_day(year, month)))
    assert 89 <= (extended - received).days <= 92
    assert extended > due


@settings(max_examples=500)
@given(received=days, day=st.integers(min_value=0, max_value=120), already_extended=st.booleans())
def test_an_extension_is_allowed_once_and_only_within_the_first_month(
    received: date, day: int, already_extended: bool
) -> None:
    today = received + timedelta(days=day)
    allowed = can_extend(received_on=received, already_extended=already_extended, today=today)
    assert allowed == (not already_extended and today <= gdpr_due_date(received))


@pytest.mark.parametrize(
    ("received", "due", "extended"),
    [
        (date(2026, 1, 31), date(2026, 2, 28), date(2026, 4, 30)),
        (date(2028, 1, 31), date(2028, 2, 29), date(2028, 4, 30)),  # leap year
        (date(2028, 1, 29), date(2028, 2, 29), date(2028, 4, 29)),
        (date(2028, 2, 29), date(2028, 3, 29), date(2028, 5, 29)),
        (date(2027, 1, 30), date(2027, 2, 28), date(2027, 4, 30)),
        (date(2026, 3, 31), date(2026, 4, 30), date(2026, 6, 30)),
        (date(2026, 11, 30), date(2026, 12, 30), date(2027, 2, 28)),
        (date(2026, 12, 31), date(2027, 1, 31), date(2027, 3, 31)),
        (date(2100, 1, 31), date(2100, 2, 28), date(2100, 4, 30)),  # 2100 is no leap year
    ],
)
def test_month_ends_and_leap_years(received: date, due: date, extended: date) -> None:
    assert gdpr_due_date(received) == due
    assert gdpr_extended_due_date(received) == extended


def on(day: date, hour: int = 12) -> Any:
    return time_machine.travel(timezone.make_aware(datetime(day.year, day.month, day.day, hour)), tick=False)


@pytest.mark.django_db
def test_a_request_received_on_31_january_is_due_at_the_end_of_february(
    alice: Customer, privacy_officer: Any
) -> None:
    with on(date(2028, 1, 31)):
        access_request = services.access_request_create(customer=alice, acting_user=alice.user)
    assert access_request.due_on == date(2028, 2, 29)
    with on(date(2028, 2, 29)):  # the last day of the first month still counts
        extended = services.access_request_extend(
            access_request=access_request, reason="Stor mengde korrespondanse", acting_user=privacy_officer
        )
    assert extended.due_on == date(2028, 4, 30)
    assert extended.extension_reason == "Stor mengde korrespondanse"


@pytest.mark.django_db
def test_no_extension_after_the_first_month(alice: Customer, privacy_officer: Any) -> None:
    with on(date(2026, 1, 31)):
        access_request = services.access_request_create(customer=alice, acting_user=alice.user)
    with on(date(2026, 3, 1)), pytest.raises(services.AccessRequestRefused) as refusal:
        services.access_request_extend(
            access_request=access_request, reason="For sent", acting_user=privacy_officer
        )
    assert refusal.value.code == "cannot_extend"
    access_request.refresh_from_db()
    assert access_request.due_on == date(2026, 2, 28)
    assert access_request.extended_at is None


@pytest.mark.django_db
def test_no_second_extension(alice: Customer, privacy_officer: Any) -> None:
    with on(date(2026, 5, 10)):
        access_request = services.access_request_create(customer=alice, acting_user=alice.user)
        services.access_request_extend(
            access_request=access_request, reason="Første", acting_user=privacy_officer
        )
        with pytest.raises(services.AccessRequestRefused) as refusal:
            services.access_request_extend(
                access_request=access_request, reason="Andre", acting_user=privacy_officer
            )
    assert refusal.value.code == "cannot_extend"
    access_request.refresh_from_db()
    assert access_request.due_on == date(2026, 8, 10)
    assert access_request.extension_reason == "Første"
    assert AccessRequest.objects.filter(customer=alice).count() == 1
