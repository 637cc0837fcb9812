"""The retention periods are parsed once, from the environment, into `RetentionPeriods`, which
refuses what the law or the policy forbids and names the variable: the Accounting Act's five years
are a floor, customer data is kept at least a month, every number is an integer in a sane range.
The database's triggers take their numbers from the same object, and `migrate` with an illegal
value stops before it changes any of them."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from retention.windows import RetentionPeriods

ENV_EXAMPLE = Path(settings.BASE_DIR) / ".env.example"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RETENTION_CUSTOMER_DATA_MONTHS", "-3", "1"),
        ("RETENTION_CUSTOMER_DATA_MONTHS", "0", "1"),
        ("RETENTION_CUSTOMER_DATA_MONTHS", "abc", "a whole number"),
        ("RETENTION_ACCOUNTING_YEARS", "0", "bokføringsloven"),
        ("RETENTION_ACCOUNTING_YEARS", "4", "bokføringsloven"),
        ("RETENTION_AUDIT_MONTHS", "2.5", "a whole number"),
        ("RETENTION_EXPORT_DAYS", "0", "1"),
        ("RETENTION_SERVER_LOG_MONTHS", "100000", "1"),
        ("RETENTION_ANALYTICS_MONTHS", "-1", "1"),
        ("RETENTION_FISCAL_YEAR_END", "02-29", "every year"),
        ("RETENTION_FISCAL_YEAR_END", "31.12", "MM-DD"),
    ],
)
def test_an_illegal_period_is_refused_naming_the_variable_and_the_allowed_range(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        RetentionPeriods.from_environ({variable: value})
    assert variable in str(refused.value)
    assert says in str(refused.value)


def test_every_period_can_be_set_from_the_environment() -> None:
    periods = RetentionPeriods.from_environ(
        {
            "RETENTION_CUSTOMER_DATA_MONTHS": "4",
            "RETENTION_ACCOUNTING_YEARS": "7",
            "RETENTION_SERVER_LOG_MONTHS": "3",
            "RETENTION_EXPORT_DAYS": "5",
            "RETENTION_AUDIT_MONTHS": "36",
            "RETENTION_ANALYTICS_MONTHS": "14",
            "RETENTION_FISCAL_YEAR_END": "06-30",
        }
    )
    assert periods == RetentionPeriods(
        customer_data_months=4,
        accounting_years=7,
        server_log_months=3,
        export_days=5,
        audit_months=36,
        analytics_months=14,
        fiscal_year_end=(6, 30),
    )
    assert RetentionPeriods.from_environ({}) == RetentionPeriods()


def test_every_period_is_listed_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text()
    for period in dataclasses.fields(RetentionPeriods):
        assert re.search(rf"^# {RetentionPeriods.variable(period.name)}=", text, re.MULTILINE), period.name


def test_the_settings_refuse_to_start_with_negative_customer_months() -> None:
    environment = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50, "RETENTION_CUSTOMER_DATA_MONTHS": "-3"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "RETENTION_CUSTOMER_DATA_MONTHS" in done.stderr
    assert "RETENTION_CUSTOMER_DATA_MONTHS=-3 is outside the allowed 1–120" in done.stderr.splitlines()[-1]


def _accounting_function() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('accounting_deletable_on(date)'::regprocedure)")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_migrate_with_zero_accounting_years_fails_before_any_trigger_changes(settings: Any) -> None:
    before = _accounting_function()
    settings.RETENTION = {"accounting_years": 0}
    with pytest.raises(ImproperlyConfigured, match="RETENTION_ACCOUNTING_YEARS"):
        call_command("migrate", verbosity=0)
    assert _accounting_function() == before
    assert "5 years" in before


@pytest.mark.django_db
def test_the_triggers_carry_the_configured_years(settings: Any) -> None:
    settings.RETENTION = {"accounting_years": 7}
    from retention.db import install_functions

    install_functions()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT accounting_deletable_on('2026-03-01')")
            assert str(cursor.fetchone()[0]) == "2034-01-01"
    finally:
        settings.RETENTION = {}
        install_functions()
