"""The purge command's answer is the truth: exit 0 when it ran (with what it deleted per category),
3 when another run held the lock (and it says so), 2 for bad arguments, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from retention.models import PurgeRun
from retention.services import _lock_key
from retention.tasks import purge_task
from tests.factories import ContactFactory, ContractFactory, CorrespondenceFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def lock_held_elsewhere() -> Iterator[None]:
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key("purge:correspondence")])
    try:
        yield
    finally:
        other.close()


def test_a_run_says_what_it_deleted_per_category_and_exits_0() -> None:
    customer = CustomerFactory.create()
    ContactFactory.create(customer=customer)
    ContractFactory.create(customer=customer, started_on=date(2020, 1, 1), ended_on=date(2024, 1, 31))
    CorrespondenceFactory.create(customer=customer)

    output = purge()

    assert "correspondence: Finished" in output
    assert "  customers.Correspondence: 1 deleted" in output
    assert "customer_account: Finished" in output
    assert "  customers.Contact: 1 deleted" in output


def test_a_run_skipped_for_the_lock_says_so_and_exits_3(lock_held_elsewhere: None) -> None:
    CorrespondenceFactory.create(
        customer=ContractFactory.create(started_on=date(2020, 1, 1), ended_on=date(2024, 1, 31)).customer
    )
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("purge", "--category", "correspondence", stdout=out)
    assert refused.value.returncode == 3
    assert "another run holds the lock" in str(refused.value)
    assert "nothing was due" not in out.getvalue()
    assert PurgeRun.objects.get(category="correspondence").status == PurgeRun.Status.SKIPPED


def test_the_task_records_a_skipped_run_as_skipped(lock_held_elsewhere: None) -> None:
    assert purge_task.apply(kwargs={"category": "correspondence"}).get() == {}
    run = PurgeRun.objects.get(category="correspondence")
    assert run.status == PurgeRun.Status.SKIPPED and run.finished_at is not None


@pytest.mark.parametrize(
    "value", ["20260501", "2026-W18-5", "0001-01-01", "9999-12-31", "2026-05-01T00:00", "2026-02-30"]
)
def test_as_of_takes_only_a_sane_yyyy_mm_dd_and_exits_2(value: str) -> None:
    with pytest.raises(CommandError) as refused:
        purge("--dry-run", "--as-of", value)
    assert refused.value.returncode == 2
    message = str(refused.value)
    assert "\n" not in message and "YYYY-MM-DD" in message
    assert "Overflow" not in message


def test_an_unknown_category_exits_2() -> None:
    with pytest.raises(CommandError) as refused:
        purge("--category", "invoice")
    assert refused.value.returncode == 2


def test_a_real_run_for_a_future_day_exits_2() -> None:
    with pytest.raises(CommandError) as refused:
        purge("--as-of", (timezone.localdate() + timedelta(days=3)).isoformat())
    assert refused.value.returncode == 2


def test_from_the_shell_a_bad_day_is_one_line_on_stderr_and_exit_status_2() -> None:
    environment = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50}
    done = subprocess.run(
        [sys.executable, "manage.py", "purge", "--dry-run", "--as-of", "20260501"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "YYYY-MM-DD" in done.stderr
