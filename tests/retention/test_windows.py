"""The retention windows: nothing is deletable a day early, everything from its day on.

Each rule is checked against an independent oracle (dateutil's relativedelta) and against the
cutoff the purges filter with, over at least 1,000 dates per rule, month ends and leap days
included."""

from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.db import connection
from hypothesis import example, given, settings
from hypothesis import strategies as st

from retention.purges.customers import accounting_cutoff, customer_data_cutoff
from retention.windows import (
    RetentionPeriods,
    accounting_deletable_on,
    add_months,
    customer_data_deletable_on,
    export_expires_at,
    fiscal_year_end,
    longest_months_in_days,
    server_log_cutoff,
    server_log_deletable_on,
)

PERIODS = RetentionPeriods()
ONE_DAY = timedelta(days=1)
MANY = settings(max_examples=1000, deadline=None)

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
month_ends = st.sampled_from(
    [
        date(2026, 1, 31),
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 8, 31),
        date(2026, 4, 30),
        date(2026, 12, 31),
    ]
)
any_day = st.one_of(days, month_ends)


def test_the_accounting_act_example_from_the_design() -> None:
    # An invoice issued in 2026 is kept to 31 December 2031 and may be deleted from 1 January 2032.
    for issued in (date(2026, 1, 1), date(2026, 6, 15), date(2026, 12, 31)):
        assert accounting_deletable_on([issued], periods=PERIODS) == date(2032, 1, 1)


@pytest.mark.parametrize(
    ("ended_on", "deletable_on"),
    [
        (date(2026, 1, 31), date(2026, 5, 1)),  # kept through 30 April
        (date(2025, 11, 30), date(2026, 3, 1)),  # 28 Feb 2026 is "3 months after"
        (date(2023, 11, 29), date(2024, 3, 1)),  # leap year: kept through 29 Feb 2024
        (date(2024, 2, 29), date(2024, 5, 30)),
        (date(2026, 8, 31), date(2026, 12, 1)),
    ],
)
def test_customer_data_month_ends(ended_on: date, deletable_on: date) -> None:
    assert customer_data_deletable_on(ended_on, periods=PERIODS) == deletable_on


@MANY
@given(ended_on=any_day)
@example(ended_on=date(2026, 1, 31))
@example(ended_on=date(2024, 2, 29))
@example(ended_on=date(2026, 8, 31))
def test_customer_data_is_kept_exactly_three_months(ended_on: date) -> None:
    deletable_on = customer_data_deletable_on(ended_on, periods=PERIODS)
    kept_through = ended_on + relativedelta(months=3)
    assert deletable_on - ONE_DAY == kept_through  # not a day early
    assert deletable_on == kept_through + ONE_DAY  # and from its day on


@MANY
@given(ended_on=any_day, today=any_day)
def test_the_customer_purge_cutoff_matches_the_window(ended_on: date, today: date) -> None:
    due = ended_on < customer_data_cutoff(today=today, periods=PERIODS)
    assert due == (customer_data_deletable_on(ended_on, periods=PERIODS) <= today)


@MANY
@given(voucher=any_day)
@example(voucher=date(2024, 2, 29))
@example(voucher=date(2026, 12, 31))
@example(voucher=date(2027, 1, 1))
def test_accounting_records_are_kept_five_years_after_the_financial_year(voucher: date) -> None:
    deletable_on = accounting_deletable_on([voucher], periods=PERIODS)
    assert deletable_on == date(voucher.year + 6, 1, 1)
    assert deletable_on - ONE_DAY == date(voucher.year + 5, 12, 31)


@MANY
@given(voucher=any_day, today=any_day)
def test_the_invoice_purge_cutoff_matches_the_window(voucher: date, today: date) -> None:
    due = voucher < accounting_cutoff(today=today, periods=PERIODS)
    assert due == (accounting_deletable_on([voucher], periods=PERIODS) <= today)


@MANY
@given(vouchers=st.lists(any_day, min_size=1, max_size=5))
def test_the_latest_voucher_decides(vouchers: list[date]) -> None:
    assert accounting_deletable_on(vouchers, periods=PERIODS) == accounting_deletable_on(
        [max(vouchers)], periods=PERIODS
    )


@MANY
@given(voucher=any_day)
def test_a_financial_year_ending_30_june(voucher: date) -> None:
    periods = RetentionPeriods(fiscal_year_end=(6, 30))
    year_end = fiscal_year_end(voucher, periods=periods)
    assert voucher <= year_end < voucher + relativedelta(years=1)
    assert (year_end.month, year_end.day) == (6, 30)
    assert accounting_deletable_on([voucher], periods=periods) == date(year_end.year + 5, 7, 1)


def test_an_impossible_financial_year_end_is_refused() -> None:
    with pytest.raises(ValueError, match="not a day every year has"):
        RetentionPeriods(fiscal_year_end=(2, 29))


@MANY
@given(created=any_day)
@example(created=date(2026, 8, 31))
@example(created=date(2025, 8, 29))
def test_server_logs_are_kept_exactly_six_months(created: date) -> None:
    deletable_on = server_log_deletable_on(created, periods=PERIODS)
    assert deletable_on - ONE_DAY == created + relativedelta(months=6)


@MANY
@given(created=any_day, today=any_day)
def test_the_server_log_cutoff_matches_the_window(created: date, today: date) -> None:
    assert (created < server_log_cutoff(today, periods=PERIODS)) == (
        server_log_deletable_on(created, periods=PERIODS) <= today
    )


@MANY
@given(created=any_day)
def test_the_s3_lifecycle_days_never_expire_a_log_early(created: date) -> None:
    # S3 expires an object N days after creation; N must reach past every 6-month window.
    expires = created + timedelta(days=longest_months_in_days(6))
    assert expires >= server_log_deletable_on(created, periods=PERIODS)


def test_the_lifecycle_days_for_six_months() -> None:
    assert longest_months_in_days(6) == 185


@MANY
@given(
    ready=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
)
def test_exports_expire_seven_days_after_ready(ready: datetime) -> None:
    assert export_expires_at(ready, periods=PERIODS) - ready == timedelta(days=7)


@MANY
@given(day=any_day, months=st.integers(min_value=-120, max_value=120))
def test_add_months_clamps_like_relativedelta(day: date, months: int) -> None:
    assert add_months(day, months) == day + relativedelta(months=months)


@pytest.mark.django_db
def test_the_database_computes_the_same_accounting_window() -> None:
    sample = [date(2000, 1, 1) + timedelta(days=offset) for offset in range(0, 22000, 7)]
    sample += [date(2024, 2, 29), date(2026, 12, 31), date(2027, 1, 1)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT d, accounting_deletable_on(d) FROM unnest(%s::date[]) AS d", [sample])
        rows = cursor.fetchall()
    assert len(rows) == len(sample)
    for voucher, deletable_on in rows:
        assert deletable_on == accounting_deletable_on([voucher], periods=PERIODS), voucher
