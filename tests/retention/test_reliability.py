"""The purges keep their promises when things go wrong: a worker killed mid-batch, four workers at
once, raw SQL aimed at held rows, nights that were missed, and a customer searched for afterwards.

Most tests here need committed data that other processes see, so they use `transactional_db`
(the tables are emptied after each test). Time travels only to days before the real today: the
database's triggers count from its own clock, and anything past its window on an earlier day is
past it on a later one too.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import (
    Contact,
    Contract,
    Correspondence,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
)
from customers.relationship import RelationshipStatus, relationship_on
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.purges.customers import among, customer_data_cutoff, due_customers
from retention.services import PURGES, legal_hold_place, purge_all, purge_run
from retention.windows import RetentionPeriods, customer_data_deletable_on
from tests.factories import ContactFactory, ContractFactory, CorrespondenceFactory, CustomerFactory
from tests.processes import database_url

OSLO = ZoneInfo("Europe/Oslo")
BASE_DIR = Path(settings.BASE_DIR)

# Every table a purge deletes from, with the label the deletion log names it by.
TRACKED: tuple[type[models.Model], ...] = (
    Customer,
    Contact,
    Contract,
    Invoice,
    InvoiceLine,
    Payment,
    Correspondence,
    LegalHold,
    User,
    AuditEvent,
    Session,
)
# The deletion log lists the ids of these (sessions and audit events are logged as counts/ranges).
LOGGED_BY_ID = {model._meta.label for model in TRACKED} - {"sessions.Session", "audit.AuditEvent"}

Snapshot = dict[str, set[Any]]


def snapshot_ids() -> Snapshot:
    return {model._meta.label: set(model._default_manager.values_list("pk", flat=True)) for model in TRACKED}


def empty_portal_tables() -> None:
    """Empty what the tests fill and restart the id sequences, so a rebuild gives the same ids.
    TRUNCATE fires no DELETE trigger, which is why the append-only tables can be emptied here."""
    tables = [model._meta.db_table for model in (*TRACKED, PurgeRun, DeletionLog, InvoiceSequence)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@dataclass
class Seed:
    """Builds records in bulk and remembers which of them are past their window (`due`).

    Everything not marked due must survive every purge."""

    due: dict[str, set[Any]] = field(default_factory=lambda: defaultdict(set))
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    invoice_numbers: Iterator[int] = field(default_factory=lambda: itertools.count(500_000))

    def mark(self, rows: Iterable[models.Model], *, due: bool) -> None:
        if due:
            for row in rows:
                self.due[row._meta.label].add(row.pk)

    def customers(
        self,
        count: int,
        *,
        due: bool,
        created_at: datetime | None = None,
        users: int = 0,
        label: str = "Kunde",
    ) -> list[Customer]:
        numbers = [next(self.serial) for _ in range(count)]
        accounts = User.objects.bulk_create(
            User(username=f"kunde{number}", email=f"kunde{number}@example.no") for number in numbers[:users]
        )
        self.mark(accounts, due=due)
        customers = Customer.objects.bulk_create(
            Customer(
                kind=Customer.Kind.PERSON,
                name=f"{label} {number}",
                email=f"kunde{number}@example.no",
                phone=f"+47 4{number:07d}",
                street_address=f"Gate {number}",
                user=accounts[index] if index < len(accounts) else None,
                created_at=created_at or timezone.now(),
            )
            for index, number in enumerate(numbers)
        )
        self.mark(customers, due=due)
        return customers

    def contracts(
        self, customers: Sequence[Customer | None], *, ended_on: date | None, due: bool
    ) -> list[Contract]:
        contracts = Contract.objects.bulk_create(
            Contract(
                customer=customer,
                service=Contract.Service.WORDPRESS_HOSTING,
                monthly_price=Decimal("249.00"),
                started_on=date(2010, 1, 1),
                ended_on=ended_on,
            )
            for customer in customers
        )
        self.mark(contracts, due=due)
        return contracts

    def contacts(self, customers: Sequence[Customer], *, per_customer: int, due: bool) -> None:
        contacts = Contact.objects.bulk_create(
            Contact(
                customer=customer, name=f"Kontakt for {customer.name}", email=f"k{customer.pk}@example.no"
            )
            for customer in customers
            for _ in range(per_customer)
        )
        self.mark(contacts, due=due)

    def correspondence(self, customers: Sequence[Customer], *, per_customer: int, due: bool) -> None:
        moment = timezone.now() - timedelta(days=4000)
        rows = Correspondence.objects.bulk_create(
            Correspondence(
                customer=customer,
                channel=Correspondence.Channel.ZENDESK,
                external_id=f"t{next(self.serial)}",
                subject=f"Spørsmål fra {customer.name}",
                opened_at=moment,
                last_message_at=moment,
                messages=[{"sender": customer.email, "body": "Hei"}],
            )
            for customer in customers
            for _ in range(per_customer)
        )
        self.mark(rows, due=due)

    def invoices(
        self,
        specs: Sequence[tuple[Customer | None, Contract | None, date | None]],
        *,
        due: bool,
        lines: int = 1,
        credits: Sequence[Invoice] = (),
    ) -> list[Invoice]:
        """Invoices as (customer, contract, issued on; None for a draft), with their lines. They are
        inserted as drafts and then issued, as the triggers require; `credits` makes credit notes."""
        invoices = Invoice.objects.bulk_create(
            Invoice(
                customer=customer,
                contract=contract,
                kind=Invoice.Kind.CREDIT_NOTE if credits else Invoice.Kind.INVOICE,
                credited_invoice=credits[index] if credits else None,
            )
            for index, (customer, contract, _issued_on) in enumerate(specs)
        )
        line_rows = InvoiceLine.objects.bulk_create(
            InvoiceLine(invoice=invoice, description="WordPress hosting", unit_price=Decimal("249.00"))
            for invoice in invoices
            for _ in range(lines)
        )
        issued = []
        for invoice, (customer, _contract, issued_on) in zip(invoices, specs, strict=True):
            if issued_on is None:
                continue
            invoice.number = next(self.invoice_numbers)
            invoice.issued_on = issued_on
            invoice.due_on = issued_on + timedelta(days=14)
            if customer is not None:
                invoice.billing_name = customer.name
                invoice.billing_email = customer.email
                invoice.billing_address = customer.postal_address
            issued.append(invoice)
        Invoice.objects.bulk_update(
            issued, ["number", "issued_on", "due_on", "billing_name", "billing_email", "billing_address"]
        )
        self.mark(invoices, due=due)
        self.mark(line_rows, due=due)
        return invoices

    def payments(self, invoices: Sequence[Invoice], *, paid_on: date, due: bool) -> None:
        rows = Payment.objects.bulk_create(
            Payment(invoice=invoice, amount=Decimal("311.25"), paid_on=paid_on) for invoice in invoices
        )
        self.mark(rows, due=due)

    def legal_holds(self, customers: Sequence[Customer], *, released: bool, due: bool) -> None:
        holds = LegalHold.objects.bulk_create(
            LegalHold(customer=customer, reason="Tvist", released_at=timezone.now() if released else None)
            for customer in customers
        )
        self.mark(holds, due=due)

    def audit_events(self, moments: Iterable[datetime], *, due: bool) -> None:
        events = AuditEvent.objects.bulk_create(
            AuditEvent(kind=AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=1, created_at=moment)
            for moment in moments
        )
        self.mark(events, due=due)

    def sessions(self, expiries: Iterable[datetime], *, due: bool) -> None:
        rows = Session.objects.bulk_create(
            Session(session_key=f"session{next(self.serial):08d}", session_data="", expire_date=expiry)
            for expiry in expiries
        )
        self.mark(rows, due=due)


def seed_every_category(*, scale: int) -> Seed:
    """Rows past their window and rows still held, in every category a purge looks at."""
    seed = Seed()
    now = timezone.now()
    today = timezone.localdate()
    long_ago = date(today.year - 8, 3, 31)
    old_year = today.year - 9  # past the accounting period (5 years after the financial year)
    held_year = today.year - 1  # inside it

    # Former customers, relationship over for years: everything about them goes, except the
    # invoices still inside their accounting period and the contracts those refer to.
    former = seed.customers(scale, due=True, users=scale // 3)
    seed.contracts(former, ended_on=long_ago, due=True)
    invoiced_contracts = seed.contracts(former, ended_on=long_ago, due=True)
    held_contracts = seed.contracts(former[::2], ended_on=long_ago, due=False)
    seed.contacts(former, per_customer=2, due=True)
    seed.correspondence(former, per_customer=2, due=True)
    old = seed.invoices(
        [
            (customer, contract, date(old_year, month, 15))
            for customer, contract in zip(former, invoiced_contracts, strict=True)
            for month in (3, 9)
        ],
        lines=2,
        due=True,
    )
    seed.payments(old, paid_on=date(old_year, 12, 1), due=True)
    seed.invoices([(customer, None, None) for customer in former], due=True)  # drafts
    held = seed.invoices(
        [
            (customer, contract, date(held_year, 5, 1))
            for customer, contract in zip(former[::2], held_contracts, strict=True)
        ],
        due=False,
    )
    seed.payments(held, paid_on=date(held_year, 5, 20), due=False)
    seed.legal_holds(former[::5], released=True, due=True)

    # Former customers under an active legal hold: nothing of theirs goes.
    on_hold = seed.customers(max(2, scale // 10), due=False)
    on_hold_contracts = seed.contracts(on_hold, ended_on=long_ago, due=False)
    seed.contacts(on_hold, per_customer=1, due=False)
    seed.correspondence(on_hold, per_customer=2, due=False)
    held_by_hold = seed.invoices(
        [(c, k, date(old_year, 6, 1)) for c, k in zip(on_hold, on_hold_contracts, strict=True)], due=False
    )
    seed.payments(held_by_hold, paid_on=date(old_year, 6, 20), due=False)
    seed.legal_holds(on_hold, released=False, due=False)

    # Active customers, and customers whose relationship ended last month: their account stays,
    # their invoices past the accounting period go.
    active = seed.customers(max(2, scale // 4), due=False)
    open_contracts = seed.contracts(active, ended_on=None, due=False)
    recent = seed.customers(max(2, scale // 4), due=False)
    recent_contracts = seed.contracts(recent, ended_on=today - timedelta(days=20), due=False)
    for group, contracts in ((active, open_contracts), (recent, recent_contracts)):
        seed.contacts(group, per_customer=1, due=False)
        seed.correspondence(group, per_customer=1, due=False)
        seed.invoices([(c, k, date(old_year, 2, 1)) for c, k in zip(group, contracts, strict=True)], due=True)
        seed.invoices([(c, k, today) for c, k in zip(group, contracts, strict=True)], due=False)
    customer = active[0]
    paid_late = seed.invoices([(customer, None, date(old_year, 11, 1))], due=False)
    seed.payments(paid_late, paid_on=date(held_year, 1, 10), due=False)  # a later voucher holds it
    credited_late = seed.invoices([(customer, None, date(old_year, 12, 1))], due=False)
    seed.invoices([(customer, None, date(held_year, 1, 5))], credits=credited_late, due=False)
    credited = seed.invoices([(customer, None, date(old_year, 4, 1))], due=True)
    seed.invoices([(customer, None, date(old_year, 4, 20))], credits=credited, due=True)

    # Prospects who never had a contract: counted from when the record was made.
    prospects = seed.customers(max(2, scale // 4), due=True, created_at=now - timedelta(days=730))
    seed.contacts(prospects, per_customer=1, due=True)
    new_prospects = seed.customers(2, due=False)
    seed.contacts(new_prospects, per_customer=1, due=False)

    # Contracts whose customer has gone: with no invoice, and with an invoice past its period.
    seed.contracts([None, None], ended_on=long_ago, due=True)
    orphan = seed.contracts([None], ended_on=long_ago, due=True)
    seed.invoices([(None, orphan[0], date(old_year, 7, 1))], due=True)

    seed.audit_events(
        (now - timedelta(days=1100) + timedelta(seconds=n) for n in range(20 * scale)), due=True
    )
    seed.audit_events((now - timedelta(days=30, seconds=n) for n in range(3 * scale)), due=False)
    seed.sessions((now - timedelta(hours=n + 1) for n in range(scale)), due=True)
    seed.sessions((now + timedelta(days=n + 1) for n in range(3)), due=False)
    return seed


def assert_purged_exactly(*, before: Snapshot, due: dict[str, set[Any]], runs: Iterable[PurgeRun]) -> None:
    """Nothing held went, nothing due is left, and the deletion log accounts for every row gone."""
    after = snapshot_ids()
    logs = DeletionLog.objects.filter(run__in=list(runs))
    for label, ids_before in before.items():
        gone = ids_before - after[label]
        assert due[label] <= ids_before, f"{label}: the seed marked rows that do not exist"
        assert gone == due[label], (
            f"{label}: held rows deleted {sorted(gone - due[label])[:10]}, "
            f"due rows left {sorted(due[label] - gone)[:10]}"
        )
        assert not after[label] - ids_before, f"{label}: rows appeared during the purge"
        logged = sum(logs.filter(model=label).values_list("count", flat=True))
        assert logged == len(gone), f"{label}: {len(gone)} rows deleted, {logged} logged"
        if label in LOGGED_BY_ID:
            logged_ids = [
                pk for ids in logs.filter(model=label).values_list("record_ids", flat=True) for pk in ids
            ]
            assert Counter(logged_ids) == Counter(gone), f"{label}: logged ids differ from deleted ids"
    audit_ranges: list[tuple[int, int]] = sorted(
        logs.filter(model="audit.AuditEvent").values_list("first_id", "last_id")  # type: ignore[arg-type]
    )
    for (_first, last), (following_first, _last) in itertools.pairwise(audit_ranges):
        assert last < following_first, "two audit batches logged overlapping ranges"


# --- running the real purge in other processes ---------------------------------------------------


# A Django process that waits for orders (one JSON line each on stdin) and forks one worker per
# order. Starting Django takes seconds on a busy machine and forking a started one milliseconds, so
# a dozen kills fit in a test. Nothing in the parent opens a database connection, so each worker
# opens its own. A worker says "<pid> started <backend pid>" once connected, waits at the barrier
# (a file appearing) if the order names one, runs the categories' purges with the order's batch
# sizes, and says "<pid> finished <run pk> <status> ..." at the end.
WORKER_FORK = r"""
import json, os, signal, sys, time, traceback
import django
django.setup()
from django.db import connection
from retention.services import PURGES, purge_run
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers are reaped by the kernel
def say(*words):  # one write() per line: workers share the pipe, and short writes are atomic
    os.write(1, (" ".join(map(str, words)) + "\n").encode())
say("ready")
for order in map(json.loads, sys.stdin):
    if os.fork():
        continue
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            say(os.getpid(), "started", cursor.fetchone()[0])
        while order.get("barrier") and not os.path.exists(order["barrier"]):
            time.sleep(0.001)
        for category in order.get("categories") or list(PURGES):
            purge = PURGES[category]
            if order.get("pause"):
                def paused(self, *, _real=purge.delete_batch, **kwargs):
                    time.sleep(order["pause"])
                    return _real(self, **kwargs)
                purge.delete_batch = paused
            size = order.get("batch_sizes", {}).get(category, order.get("batch_size"))
            run = purge_run(category=category, batch_size=size)
            say(os.getpid(), "ran", run.pk, run.status)
        say(os.getpid(), "finished")
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
"""


class Workers:
    """Purge workers in other processes, on the test database, that the test can kill."""

    def __init__(self) -> None:
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.said = b""
        self.parent = subprocess.Popen(
            [sys.executable, "-c", WORKER_FORK],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DATABASE_URL": database_url(),
                "PYTHONPATH": str(BASE_DIR),
                "LOG_LEVEL": "WARNING",
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            start_new_session=True,  # its own process group, so close() ends the workers with it
        )
        assert self.read(timeout=120) == ["ready"]

    def start(self, **order: Any) -> None:
        assert self.parent.stdin is not None
        self.parent.stdin.write(json.dumps(order) + "\n")
        self.parent.stdin.flush()

    def read(self, *, timeout: float = 60) -> list[str]:
        """The next line any worker said, split in words; [] when none comes within `timeout`."""
        assert self.parent.stdout is not None
        stdout = self.parent.stdout.fileno()  # read unbuffered: select() cannot see a file's buffer
        deadline = time.monotonic() + timeout
        while b"\n" not in self.said:
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return []
            chunk = os.read(stdout, 65536)
            if not chunk:
                self.errors.seek(0)
                pytest.fail(f"the worker process ended:\n{self.errors.read()}")
            self.said += chunk
        line, _, self.said = self.said.partition(b"\n")
        return line.decode().split()

    def expect(self, word: str, *, timeout: float = 60) -> list[str]:
        said = self.read(timeout=timeout)
        if len(said) < 2 or said[1] != word:
            self.errors.seek(0)
            pytest.fail(f"expected a worker to say {word!r}, got {said!r}:\n{self.errors.read()}")
        return said

    def until(self, word: str, *, timeout: float = 60) -> list[list[str]]:
        """Everything said up to and including the first line with `word`."""
        said = [self.read(timeout=timeout)]
        while len(said[-1]) > 1 and said[-1][1] != word:
            said.append(self.read(timeout=timeout))
        if len(said[-1]) < 2:
            self.errors.seek(0)
            pytest.fail(f"no worker said {word!r}; they said {said!r}:\n{self.errors.read()}")
        return said

    def close(self) -> None:
        os.killpg(self.parent.pid, signal.SIGKILL)
        self.parent.wait()
        self.errors.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.close()


def wait_until_backend_gone(pid: int, *, timeout: float = 20) -> None:
    """A killed client's backend notices the closed socket, rolls back and drops its locks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
        time.sleep(0.01)
    pytest.fail(f"backend {pid} of the killed worker is still there")


# Small batches, so a night's run is well over a hundred short transactions to be killed in.
NIGHTLY_ORDER = {"batch_size": 2, "batch_sizes": {"sessions_and_audit": 40}}
# Where in the run each kill lands, as a share of an uninterrupted run's duration.
KILL_POINTS = (lambda rng: sorted(round(rng.uniform(0.01, 0.8), 3) for _ in range(14)))(random.Random(2026))


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_at_any_point_leaves_nothing_half_done_and_the_next_run_finishes(
    workers: Workers,
) -> None:
    # Two uninterrupted runs first: they must end in the same state, and they time a whole run.
    durations = []
    for _ in range(2):
        empty_portal_tables()
        seed = seed_every_category(scale=24)
        before = snapshot_ids()
        workers.start(**NIGHTLY_ORDER)
        workers.expect("started")
        began = time.monotonic()
        statuses = [said[3] for said in workers.until("finished") if said[1] == "ran"]
        durations.append(time.monotonic() - began)
        assert statuses == ["finished"] * len(PURGES)
        assert_purged_exactly(before=before, due=seed.due, runs=PurgeRun.objects.all())
    whole_run = min(durations)

    landed: list[str] = []
    killed_in: set[str] = set()
    for point in KILL_POINTS:
        empty_portal_tables()
        seed = seed_every_category(scale=24)
        before = snapshot_ids()

        workers.start(**NIGHTLY_ORDER)
        pid, _, backend = workers.expect("started")
        time.sleep(point * whole_run)
        landed.append(kill(int(pid), int(backend), workers))
        running = PurgeRun.objects.filter(status=PurgeRun.Status.RUNNING)
        interrupted = set(running.values_list("pk", flat=True))
        killed_in.update(running.values_list("category", flat=True))
        purge_all()

        assert_purged_exactly(before=before, due=seed.due, runs=PurgeRun.objects.all())
        assert not PurgeRun.objects.filter(status=PurgeRun.Status.RUNNING).exists()
        assert PurgeRun.objects.filter(status=PurgeRun.Status.FAILED).count() == len(interrupted)
        for run in PurgeRun.objects.filter(pk__in=interrupted):
            assert run.status == PurgeRun.Status.FAILED and "interrupted" in run.errors[-1]
            logged: Counter[str] = Counter()
            for model, count in DeletionLog.objects.filter(run=run).values_list("model", "count"):
                logged[model] += count
            assert run.counts == dict(logged)

    where = Counter(landed)
    # The kills hit running work, several of them inside a batch's transaction, in more than one
    # purge. The account and invoice purges take most of a night since the preview shares their
    # steps, so kills timed as fractions of a whole run land mostly there: two purges, not three.
    assert len(landed) - where["after the end"] >= 10, where
    assert where["idle in transaction"] >= 3, where
    assert len(killed_in) >= 2, killed_in


def kill(pid: int, backend: int, workers: Workers) -> str:
    """SIGKILL a worker; says where its database session was: inside a transaction or not."""
    try:
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.05)  # a statement in flight completes; the backend then waits on the client
        with connection.cursor() as cursor:
            cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [backend])
            row = cursor.fetchone()
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        row = None
    wait_until_backend_gone(backend)
    said = workers.read(timeout=0)
    while said and said[1] != "finished":
        said = workers.read(timeout=0)
    return "after the end" if said or row is None else str(row[0])


@pytest.mark.django_db(transaction=True)
def test_of_four_purges_started_at_once_one_works_and_three_skip(tmp_path: Path, workers: Workers) -> None:
    seed = Seed()
    prospects = seed.customers(300, due=True, created_at=timezone.now() - timedelta(days=730))
    seed.contacts(prospects, per_customer=1, due=True)
    before = snapshot_ids()
    barrier = tmp_path / "go"

    # Each batch pauses inside its transaction, so the run that takes the lock surely outlasts the
    # moment the other three ask for it; the lock, the skip and the logging are the real code.
    for _ in range(4):
        workers.start(categories=["customer_account"], batch_size=5, pause=0.01, barrier=str(barrier))
    for _ in range(4):
        workers.expect("started")
    barrier.touch()
    said = [line for _ in range(4) for line in workers.until("finished")]
    outcomes = [line[2:] for line in said if line[1] == "ran"]

    assert sorted(status for _pk, status in outcomes) == ["finished", "skipped", "skipped", "skipped"]
    runs = PurgeRun.objects.filter(pk__in=[int(pk) for pk, _status in outcomes])
    working = runs.get(status=PurgeRun.Status.FINISHED)
    assert working.batches == 60
    assert not DeletionLog.objects.exclude(run=working).exists()
    assert_purged_exactly(before=before, due=seed.due, runs=runs)
    customer_lines = DeletionLog.objects.filter(model="customers.Customer")
    assert customer_lines.count() == len(set(customer_lines.values_list("customer_id", flat=True))) == 300


# --- the database refuses, whoever asks ---------------------------------------------------------


def refusal(sql: str, params: Sequence[Any] = ()) -> str | None:
    """The database's reason for refusing `sql` (an IntegrityError), or None when it ran."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except IntegrityError as error:
        return str(error)
    return None


def issue(customer: Customer, issued_on: date, *, contract: Contract | None = None) -> Invoice:
    return customer_services.invoice_create(
        customer=customer,
        lines=[("WordPress hosting", Decimal("1"), Decimal("249.00"))],
        contract_id=contract.pk if contract else None,
        issue_on=issued_on,
    )


ACCOUNTING_RECORD = "is an accounting record kept until"
LEGAL_HOLD = "is under a legal hold"


@pytest.mark.django_db
def test_raw_sql_cannot_delete_an_invoice_or_payment_inside_the_accounting_period() -> None:
    today = timezone.localdate()
    customer = CustomerFactory.create()
    this_year = issue(customer, today.replace(month=1, day=1))
    payment = customer_services.payment_register(invoice=this_year, amount=Decimal("311.25"), paid_on=today)
    old = issue(customer, date(today.year - 9, 3, 1))
    paid_late = issue(customer, date(today.year - 9, 4, 1))
    customer_services.payment_register(invoice=paid_late, amount=Decimal("311.25"), paid_on=today)

    assert ACCOUNTING_RECORD in (refusal("DELETE FROM customers_invoice WHERE id = %s", [this_year.pk]) or "")
    assert ACCOUNTING_RECORD in (refusal("DELETE FROM customers_payment WHERE id = %s", [payment.pk]) or "")
    # An old invoice with a payment this year: the cascade to the payment is refused.
    assert ACCOUNTING_RECORD in (refusal("DELETE FROM customers_invoice WHERE id = %s", [paid_late.pk]) or "")
    assert "its lines cannot change" in (
        refusal("DELETE FROM customers_invoiceline WHERE invoice_id = %s", [this_year.pk]) or ""
    )
    # The same statement on an invoice past its period runs: it is the period that refuses.
    assert refusal("DELETE FROM customers_invoice WHERE id = %s", [old.pk]) is None
    assert Invoice.objects.filter(pk__in=[this_year.pk, paid_late.pk]).count() == 2
    assert Payment.objects.filter(pk=payment.pk).exists()


@pytest.mark.django_db
def test_raw_sql_cannot_delete_anything_of_a_customer_under_a_legal_hold(support_user: Any) -> None:
    customer = CustomerFactory.create()
    ContactFactory.create(customer=customer)
    CorrespondenceFactory.create(customer=customer)
    ContractFactory.create(customer=customer, started_on=date(2014, 1, 1), ended_on=date(2015, 1, 31))
    old = issue(customer, date(2014, 5, 1))
    hold = legal_hold_place(
        customer=customer, reason="Politiet ber om opplysninger", ends_on=None, placed_by=support_user
    )

    for table, column in (
        ("customers_contact", "customer_id"),
        ("customers_correspondence", "customer_id"),
        ("customers_contract", "customer_id"),
        ("customers_invoice", "customer_id"),
        ("customers_customer", "id"),  # its holds would go first, by cascade
        ("retention_legalhold", "customer_id"),
    ):
        assert LEGAL_HOLD in (refusal(f"DELETE FROM {table} WHERE {column} = %s", [customer.pk]) or ""), table
    assert LEGAL_HOLD in (refusal("DELETE FROM customers_invoice WHERE id = %s", [old.pk]) or "")
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert customer.contacts.count() == customer.correspondence.count() == customer.contracts.count() == 1

    # Once released, the same raw DELETE goes through: the hold was the only thing in the way.
    LegalHold.objects.filter(pk=hold.pk).update(released_at=timezone.now())
    assert refusal("DELETE FROM customers_customer WHERE id = %s", [customer.pk]) is None


@pytest.mark.django_db
def test_the_proof_of_deletion_and_the_audit_trail_cannot_be_rewritten() -> None:
    finished = purge_run(category="correspondence")
    running = PurgeRun.objects.create(category="invoices", as_of=timezone.localdate())
    line = DeletionLog.objects.create(run=finished, category="correspondence", model="x", count=1, rule="r")
    recent = AuditEvent.objects.create(kind=AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=7)
    old = AuditEvent.objects.create(
        kind=AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=7, created_at=timezone.now() - timedelta(days=800)
    )

    def refused(sql: str, pk: int) -> str:
        return refusal(sql, [pk]) or ""

    assert "append-only" in refused("UPDATE retention_deletionlog SET count = 0 WHERE id = %s", line.pk)
    assert "append-only" in refused("DELETE FROM retention_deletionlog WHERE id = %s", line.pk)
    assert "append-only" in refused("DELETE FROM retention_purgerun WHERE id = %s", finished.pk)
    assert "append-only" in refused("DELETE FROM retention_purgerun WHERE id = %s", running.pk)
    assert "cannot change" in refused(
        "UPDATE retention_purgerun SET counts = '{}' WHERE id = %s", finished.pk
    )
    assert refusal("UPDATE retention_purgerun SET batches = 1 WHERE id = %s", [running.pk]) is None
    assert "retention window" in refused("DELETE FROM audit_auditevent WHERE id = %s", recent.pk)
    assert "cannot change" in refused("UPDATE audit_auditevent SET customer_id = 8 WHERE id = %s", old.pk)
    assert refusal("DELETE FROM audit_auditevent WHERE id = %s", [old.pk]) is None  # past its window


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Customer, Correspondence, Contract, Invoice, Contact, LegalHold])
def test_deleting_a_batch_is_one_delete_statement(model: type[models.Model]) -> None:
    # One signal receiver, or one Python-side on_delete pointing at the model, makes Django fetch
    # every row (and its children) before deleting: ~40k rows/s and hundreds of MB (DESIGN.md).
    customers = CustomerFactory.create_batch(3)
    for customer in customers:
        ContactFactory.create(customer=customer)
        CorrespondenceFactory.create(customer=customer)
        contract = ContractFactory.create(customer=customer)
        issue(customer, date(2012, 5, 1), contract=contract)
        LegalHold.objects.create(customer=customer, reason="Frist", released_at=timezone.now())
    Invoice.objects.update(contract=None)  # an invoice refers to its contract (NO ACTION)
    batch = list(model._default_manager.values_list("pk", flat=True))
    assert batch
    with CaptureQueriesContext(connection) as queries:
        model._default_manager.filter(among("pk", batch)).delete()  # as the purges delete a batch
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("DELETE"), statements
    assert not model._default_manager.exists()


@pytest.mark.django_db
def test_the_purge_takes_exactly_the_customers_the_relationship_rule_makes_due() -> None:
    # The purge's query is its own SQL (see due_customers); the pure rule is the oracle.
    today = timezone.localdate()
    periods = RetentionPeriods.from_settings()
    cutoff = customer_data_cutoff(today=today, periods=periods)
    start_of_cutoff = timezone.make_aware(datetime.combine(cutoff, datetime.min.time()))
    ends: list[date | None] = [
        *(cutoff + timedelta(days=shift) for shift in (-400, -1, 0, 1)),
        *(today + timedelta(days=shift) for shift in (-1, 0, 30)),
        None,  # open-ended
    ]
    combinations = [(), *((end,) for end in ends), *itertools.combinations(ends, 2)]
    customers = Customer.objects.bulk_create(
        Customer(kind=Customer.Kind.PERSON, name=f"K{n}", email=f"k{n}@example.no", created_at=created)
        for n, (_contracts, created) in enumerate(
            itertools.product(combinations, (start_of_cutoff - timedelta(seconds=1), start_of_cutoff))
        )
    )
    contract_ends = [c for c, _ in itertools.product(combinations, range(2))]
    Contract.objects.bulk_create(
        Contract(
            customer=customer, service="domain", monthly_price=1, started_on=date(2000, 1, 1), ended_on=end
        )
        for customer, customer_ends in zip(customers, contract_ends, strict=True)
        for end in customer_ends
    )
    held = customers[3]
    LegalHold.objects.create(customer=held, reason="Tvist")

    expected = set()
    for customer, customer_ends in zip(customers, contract_ends, strict=True):
        relationship = relationship_on(customer_ends, today=today)
        if relationship.status == RelationshipStatus.NO_CONTRACT:
            due = customer.created_at < start_of_cutoff
        else:
            ended_on = relationship.ended_on
            due = ended_on is not None and customer_data_deletable_on(ended_on, periods=periods) <= today
        if due and customer != held:
            expected.add(customer.pk)

    assert 0 < len(expected) < len(customers) - 1
    assert set(due_customers(today=today, periods=periods).values_list("pk", flat=True)) == expected


# --- missed nights are caught up ----------------------------------------------------------------

NIGHTS = [date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 2)]


def at_night(day: date) -> Any:
    return time_machine.travel(datetime(day.year, day.month, day.day, 2, 30, tzinfo=OSLO), tick=False)


def seed_three_nights() -> None:
    """Rows that fall due on each of three consecutive nights, and rows still held after them.

    Built at a fixed moment so two builds are identical, timestamps included."""
    seed = Seed()
    noon = datetime(2025, 6, 1, 12, 0, tzinfo=OSLO)
    with time_machine.travel(noon, tick=False):
        # Account data goes 3 months after the relationship's last day: 30 Sep → 31 Dec (night 1),
        # 1 Oct → 2 Jan (night 3), 2 Oct → 3 Jan (after the nights).
        for ended_on in (date(2025, 9, 30), date(2025, 10, 1), date(2025, 10, 2)):
            customers = seed.customers(3, due=False, users=1)
            contracts = seed.contracts(customers, ended_on=ended_on, due=False)
            seed.contacts(customers, per_customer=2, due=False)
            seed.correspondence(customers, per_customer=2, due=False)
            # 2019 is past its period on every night, 2020 from 1 Jan 2026 (night 2), 2025 is held.
            for year in (2019, 2020, 2025):
                invoices = seed.invoices(
                    [(c, k, date(year, 6, 1)) for c, k in zip(customers, contracts, strict=True)], due=False
                )
                seed.payments(invoices, paid_on=date(year, 6, 20), due=False)
            seed.invoices([(c, None, None) for c in customers], due=False)
        # Prospects count from the day the record was made.
        for created in (date(2025, 9, 30), date(2025, 10, 1), date(2025, 10, 2)):
            moment = datetime(created.year, created.month, created.day, 12, tzinfo=OSLO)
            seed.contacts(seed.customers(2, due=False, created_at=moment), per_customer=1, due=False)
        # A legal hold whose last day is night 2.
        on_hold = seed.customers(2, due=False)
        seed.contracts(on_hold, ended_on=date(2019, 1, 31), due=False)
        seed.correspondence(on_hold, per_customer=1, due=False)
        seed.invoices([(c, None, date(2019, 3, 1)) for c in on_hold], due=False)
        LegalHold.objects.bulk_create(
            LegalHold(customer=c, reason="Frist", ends_on=date(2026, 1, 1)) for c in on_hold
        )
        # An active customer's 2019 invoices: one paid in 2020, one credited in 2020 (both go on
        # night 2), one credited in 2019 (goes on night 1).
        active = seed.customers(1, due=False)
        seed.contracts(active, ended_on=None, due=False)
        paid_late = seed.invoices([(active[0], None, date(2019, 11, 1))], due=False)
        seed.payments(paid_late, paid_on=date(2020, 2, 1), due=False)
        credited_late = seed.invoices([(active[0], None, date(2019, 12, 20))], due=False)
        seed.invoices([(active[0], None, date(2020, 1, 5))], credits=credited_late, due=False)
        credited = seed.invoices([(active[0], None, date(2019, 5, 1))], due=False)
        seed.invoices([(active[0], None, date(2019, 5, 20))], credits=credited, due=False)
        seed.contracts([None], ended_on=date(2019, 1, 1), due=False)
        # Audit events are kept 24 months from the day: one group falls due each night.
        for day in (date(2023, 12, 30), date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 2)):
            start = datetime(day.year, day.month, day.day, 12, tzinfo=OSLO)
            seed.audit_events((start + timedelta(minutes=n) for n in range(5)), due=False)
        for day in (date(2025, 12, 30), date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 2)):
            seed.sessions([datetime(day.year, day.month, day.day, 12, tzinfo=OSLO)], due=False)


def table_contents() -> dict[str, dict[Any, tuple[Any, ...]]]:
    contents = {}
    for model in TRACKED:
        names = [f.attname for f in model._meta.concrete_fields]
        rows = model._default_manager.values_list(*names)
        contents[model._meta.label] = {row[names.index(model._meta.pk.attname)]: row for row in rows}
    return contents


def deletion_proof() -> dict[str, tuple[int, list[int]]]:
    """Per model: rows logged as deleted, and the ids logged."""
    proof: dict[str, tuple[int, list[int]]] = {}
    for model in {label for label in DeletionLog.objects.values_list("model", flat=True)}:
        lines = DeletionLog.objects.filter(model=model)
        ids = sorted(pk for record_ids in lines.values_list("record_ids", flat=True) for pk in record_ids)
        proof[model] = (sum(lines.values_list("count", flat=True)), ids)
    return proof


@pytest.mark.django_db(transaction=True)
def test_three_missed_nights_end_where_three_nightly_runs_end() -> None:
    assert NIGHTS[-1] < date(2026, 11, 23)  # only the past: the triggers use the database's clock
    empty_portal_tables()
    seed_three_nights()
    deleted_each_night = []
    for night in NIGHTS:
        with at_night(night):
            runs = purge_all()
        assert all(run.status == PurgeRun.Status.FINISHED for run in runs)
        deleted_each_night.append(sum(run.total_deleted for run in runs))
    every_night = table_contents()
    every_night_proof = deletion_proof()

    empty_portal_tables()
    seed_three_nights()
    with at_night(NIGHTS[-1]):
        runs = purge_all()
    assert all(run.status == PurgeRun.Status.FINISHED for run in runs)

    assert all(deleted > 0 for deleted in deleted_each_night), deleted_each_night
    assert table_contents() == every_night
    assert deletion_proof() == every_night_proof
    assert sum(deleted_each_night) == sum(run.total_deleted for run in runs)


# --- nothing of a purged customer is left anywhere ----------------------------------------------


def tables_containing(needle: str) -> set[tuple[str, str]]:
    """Every (table, column) in the database whose value, as text, contains `needle`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name IN ("
            "  SELECT table_name FROM information_schema.tables"
            "   WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')"
        )
        columns = cursor.fetchall()
        found = set()
        for table, column in columns:
            cursor.execute(
                f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE "{column}"::text ILIKE %s)', [f"%{needle}%"]
            )
            if cursor.fetchone()[0]:
                found.add((table, column))
    return found


@pytest.mark.django_db(transaction=True)
def test_after_the_purge_a_former_customer_is_only_in_her_held_invoices_billing_snapshot() -> None:
    name, email, phone = "Ingrid Zyxwvutsen", "ingrid.zyxwvutsen@fjordpost.example", "+47 41998877"
    user = User.objects.create_user(
        username="ingrid-zyxwvutsen", email=email, first_name="Ingrid", last_name="Zyxwvutsen"
    )
    customer = CustomerFactory.create(
        kind=Customer.Kind.PERSON,
        organisation_number="",
        name=name,
        email=email,
        phone=phone,
        street_address="Zyxwvutsvegen 4",
        user=user,
    )
    ContactFactory.create(customer=customer, name=name, email=email, phone=phone)
    CorrespondenceFactory.create(
        customer=customer,
        subject=f"Faktura til {name}",
        messages=[{"sender": email, "body": f"Hilsen {name}, tlf. {phone}"}],
    )
    contract = ContractFactory.create(
        customer=customer, started_on=date(2014, 1, 1), ended_on=date(2025, 1, 31)
    )
    issue(customer, date(2014, 6, 1), contract=contract)
    held = issue(customer, date(2025, 1, 1), contract=contract)
    customer_services.payment_register(invoice=held, amount=Decimal("311.25"), paid_on=date(2025, 1, 20))
    customer_services.invoice_create(
        customer=customer, lines=[(f"Tillegg for {name}", Decimal(1), Decimal(10))]
    )
    staff = User.objects.create_user(username="siri-support", is_staff=True)
    hold = legal_hold_place(customer=customer, reason=f"Klage fra {name}", ends_on=None, placed_by=staff)
    LegalHold.objects.filter(pk=hold.pk).update(released_at=timezone.now())
    other = CustomerFactory.create(name="Bob Berg AS")
    ContractFactory.create(customer=other)

    runs = purge_all()

    assert all(run.status == PurgeRun.Status.FINISHED for run in runs)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert Customer.objects.filter(pk=other.pk).exists()
    assert tables_containing(name) == {("customers_invoice", "billing_name")}
    assert tables_containing("Zyxwvutsen") == {
        ("customers_invoice", "billing_name"),
        ("customers_invoice", "billing_email"),
    }
    assert tables_containing(email) == {("customers_invoice", "billing_email")}
    assert tables_containing(phone) == set()
    assert tables_containing("41998877") == set()
    assert list(Invoice.objects.filter(billing_email=email).values_list("pk", flat=True)) == [held.pk]


@pytest.mark.django_db(transaction=True)
def test_a_staff_edit_in_the_admin_leaves_no_trace_of_the_name_after_the_purge() -> None:
    name = "Halvard Qxyzbrekke"
    customer = CustomerFactory.create(kind=Customer.Kind.PERSON, organisation_number="", name=name)
    ContractFactory.create(customer=customer, started_on=date(2014, 1, 1), ended_on=date(2015, 1, 31))
    staff = User.objects.create_user(username="siri-support", is_staff=True)
    # What CustomerAdmin.log_change writes when staff save the customer's change form.
    LogEntry.objects.log_actions(
        user_id=staff.pk,
        queryset=[customer],
        action_flag=CHANGE,
        change_message=[{"changed": {"fields": ["Phone"]}}],
        single_object=True,
    )

    purge_all()

    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert tables_containing(name) == set()
