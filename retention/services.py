"""Running purges, and placing and releasing legal holds.

Invariants of `purge_run`:
- Single-flight per category: a PostgreSQL advisory lock, held on this connection for the whole
  run. A second run of the same category meanwhile records a SKIPPED run and deletes nothing.
  A worker that dies drops its connection and with it the lock.
- Each batch is its own short transaction (delete + DeletionLog together); the PurgeRun row is
  written at the start and completed at the end. A run found still RUNNING by the next one was
  interrupted: it is closed as FAILED, with its counts taken from its DeletionLog lines.
- A real (not dry) run never runs for a day in the future: the database's triggers, which count
  from the real today, would refuse it anyway.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pglock
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from audit.models import AuditEvent
from customers.models import Customer
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.purges.audit import SessionAndAuditPurge
from retention.purges.base import PreviewLine, Purge, Tonight
from retention.purges.customers import ContractPurge, CorrespondencePurge, CustomerAccountPurge, InvoicePurge
from retention.purges.server_log_purge import ServerLogPurge
from retention.windows import RetentionPeriods

logger = logging.getLogger(__name__)

# The order `purge_all` runs them in; see retention/purges/customers.py for why.
PURGES: dict[str, type[Purge]] = {
    purge.category: purge
    for purge in (
        CorrespondencePurge,
        InvoicePurge,
        CustomerAccountPurge,
        ContractPurge,
        ServerLogPurge,
        SessionAndAuditPurge,
    )
}


def register_purge(purge: type[Purge]) -> type[Purge]:
    """Add a purge (server logs, exports) defined in its own module."""
    PURGES[purge.category] = purge
    return purge


class PurgeRefused(ValueError):
    """A purge was asked for something it must not do (an unknown category, a future day)."""


def _lock_key(name: str) -> int:
    # The key every portal version has used for this lock (crc32, not pglock's sha256 of a string
    # id): during a rolling deploy an old and a new worker still exclude each other.
    return zlib.crc32(f"portal:{name}".encode())


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Try to take a session-level advisory lock, at once (pg_try_advisory_lock); yields whether
    it was taken, and releases it on the way out."""
    # pglock's acquire()/release(), not its context manager: inside a transaction that one runs the
    # body in a savepoint, which would roll back the FAILED PurgeRun a failing run records before it
    # re-raises (an erasure on request runs inside the caller's transaction).
    lock = pglock.advisory(_lock_key(name), timeout=0)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _without_jit() -> None:
    """Turn PostgreSQL's JIT compiler off for the rest of this batch's transaction.

    A batch's queries touch a few thousand rows, but the planner costs a `LIMIT` over a large
    table as a scan of all of it, which crosses `jit_above_cost`: compiling the lock query took
    0.25–0.5 s of every batch, 50 times the query itself (benchmarks/purge.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")


def _close_interrupted_runs(category: str) -> None:
    for stale in PurgeRun.objects.filter(category=category, status=PurgeRun.Status.RUNNING):
        counts = dict(
            DeletionLog.objects.filter(run=stale)
            .values("model")
            .annotate(rows=Sum("count"))
            .values_list("model", "rows")
        )
        stale.status = PurgeRun.Status.FAILED
        stale.counts = counts
        stale.errors = [
            *stale.errors,
            "interrupted: the worker stopped before the run finished; the next run resumed",
        ]
        stale.finished_at = timezone.now()
        stale.save()


def purge_run(
    *,
    category: str,
    as_of: date | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    periods: RetentionPeriods | None = None,
    erasure_of: int | None = None,
) -> PurgeRun:
    """Run one category's purge to the end (or preview it, with `dry_run`); with `erasure_of`,
    for that one customer now, as an erasure on request (`erase_customer`)."""
    if category not in PURGES:
        raise PurgeRefused(f"no purge for category {category!r}; choose from {', '.join(PURGES)}")
    today = as_of or timezone.localdate()
    if not dry_run and today > timezone.localdate():
        raise PurgeRefused("only a dry run can look at a day in the future")
    if erasure_of is not None and (dry_run or PURGES[category].erasure_step is None):
        raise PurgeRefused(f"the {category} purge does not run as an erasure on request")
    purge = PURGES[category](periods=periods, batch_size=batch_size, erasure_of=erasure_of)

    with advisory_lock(f"purge:{category}") as acquired:
        if not acquired:
            logger.info("purge %s skipped: another run holds the lock", category)
            return PurgeRun.objects.create(
                category=category,
                as_of=today,
                dry_run=dry_run,
                status=PurgeRun.Status.SKIPPED,
                finished_at=timezone.now(),
            )
        _close_interrupted_runs(category)
        run = PurgeRun.objects.create(
            category=category,
            as_of=today,
            dry_run=dry_run,
            cutoff=None if erasure_of is not None else purge.cutoff(today=today),
            erasure_of=erasure_of,
        )
        run_started = time.monotonic()
        counts: dict[str, int] = defaultdict(int)
        errors: list[str] = []
        try:
            if dry_run:
                for line in night_preview(as_of=today, until=category)[category]:
                    counts[line.model] += line.count
            else:
                while True:
                    started = time.monotonic()
                    with transaction.atomic():
                        _without_jit()
                        result = purge.delete_batch(today=today, run=run)
                    if result is None:
                        break
                    if purge.admin_history_deleted:  # logged and deleted with the rows it is about
                        result.add("admin.LogEntry", purge.admin_history_deleted)
                        purge.admin_history_deleted = 0
                    run.batches += 1
                    run.longest_batch_seconds = max(run.longest_batch_seconds, time.monotonic() - started)
                    for model, count in result.counts.items():
                        counts[model] += count
                    errors.extend(result.errors)
            run.status = PurgeRun.Status.FINISHED
        except Exception as error:  # recorded on the run, then re-raised for the task's retry
            logger.exception("purge %s failed", category)
            errors.append(f"{type(error).__name__}: {error}")
            run.status = PurgeRun.Status.FAILED
            raise
        finally:
            run.counts = dict(counts)
            run.errors = errors
            run.duration_seconds = time.monotonic() - run_started
            run.finished_at = timezone.now()
            run.save()
    logger.info("purge %s %s: %s", category, "previewed" if dry_run else "deleted", dict(counts))
    return run


def purge_all(*, as_of: date | None = None, dry_run: bool = False) -> list[PurgeRun]:
    return [purge_run(category=category, as_of=as_of, dry_run=dry_run) for category in PURGES]


def erase_customer(*, customer_id: int) -> list[PurgeRun]:
    """Erase one customer now, as she asked (GDPR art. 17): the nightly purges of what is about a
    customer, in their nightly order, run their own code for her alone with her window closed.
    Legal holds and the accounting period still apply (her issued invoices stay, without her
    customer row, until their own window closes). Each run takes its category's lock, as a night's
    run does: one that finds the nightly purge at work is SKIPPED, and the caller tries again. When
    a processor could not erase her yet, her rows stay for the next attempt, as at night."""
    steps = sorted(
        (purge.erasure_step, category) for category, purge in PURGES.items() if purge.erasure_step is not None
    )
    return [purge_run(category=category, erasure_of=customer_id) for _step, category in steps]


def night_preview(*, as_of: date | None = None, until: str | None = None) -> dict[str, list[PreviewLine]]:
    """What each purge would delete on `as_of`, in `purge_all`'s order, each seeing what the ones
    before it take that night (a customer's invoices going lets her contracts go too): the numbers
    the run of that day deletes, per category and table, cascades included. `until` stops after
    that category (the later ones cannot change its numbers). No lock is taken."""
    today = as_of or timezone.localdate()
    tonight = Tonight()
    preview: dict[str, list[PreviewLine]] = {}
    for key, purge in PURGES.items():
        preview[key] = purge().preview(today=today, tonight=tonight)
        if key == until:
            break
    return preview


def purge_preview(*, category: str, as_of: date | None = None) -> list[PreviewLine]:
    """What the purge of `category` would delete on `as_of`, without taking any lock."""
    if category not in PURGES:
        raise PurgeRefused(f"no purge for category {category!r}")
    return night_preview(as_of=as_of, until=category)[category]


@transaction.atomic
def legal_hold_place(*, customer: Customer, reason: str, ends_on: date | None, placed_by: Any) -> LegalHold:
    hold = LegalHold.objects.create(customer=customer, reason=reason, ends_on=ends_on, placed_by=placed_by)
    AuditEvent.record(AuditEvent.Kind.HOLD_PLACED, actor=placed_by, customer_id=customer.pk, target=hold)
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, released_by: Any) -> LegalHold:
    if hold.released_at is None:
        hold.released_at = timezone.now()
        hold.released_by = released_by if getattr(released_by, "is_authenticated", False) else None
        hold.save(update_fields=["released_at", "released_by"])
        AuditEvent.record(
            AuditEvent.Kind.HOLD_RELEASED, actor=released_by, customer_id=hold.customer_id, target=hold
        )
    return hold
