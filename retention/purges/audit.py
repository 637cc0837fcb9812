"""Purge of sign-in sessions and of audit events past their window.

Audit events are log-like: many rows, no customer to group by, deleted by creation time. They go
in primary-key ranges (`id >= lo AND id < hi AND created_at < cutoff`): PostgreSQL walks the key
index once per range, which keeps a batch as fast as a hand-written batched DELETE; the deletion
and its log line are one statement.

The range is deleted directly, not first locked with `FOR UPDATE SKIP LOCKED`: locking wrote every
row once more before deleting it and made the purge run at about half the speed of the plain
batched DELETE (benchmarks/purge.py). What the lock guaranteed still holds: `DELETE … RETURNING`
returns only the rows this statement deleted (a row another transaction deleted first is skipped
once that one commits), so no row is logged twice. Where another transaction holds a row, the
batch waits instead of skipping it; nothing else locks audit events, and the category runs
single-flight.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from audit.models import AuditEvent
from retention.models import PurgeRun
from retention.purges.base import BatchResult, PreviewLine, Purge
from retention.windows import add_months

DELETE_RANGE_SQL = """
WITH gone AS (
    DELETE FROM audit_auditevent
     WHERE id >= %(low)s AND id < %(high)s AND created_at < %(cutoff)s
    RETURNING id
)
INSERT INTO retention_deletionlog
    (run_id, category, model, customer_id, count, record_ids, first_id, last_id, rule, deleted_at)
SELECT %(run)s, %(category)s, 'audit.AuditEvent', NULL, count(*), '{}', min(id), max(id), %(rule)s, now()
  FROM gone HAVING count(*) > 0
RETURNING count
"""


class SessionAndAuditPurge(Purge):
    category = "sessions_and_audit"
    batch_size = 20_000

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sessions_done = False
        self.next_low: int | None = None
        self.high_end = 0

    def audit_cutoff(self, *, today: date) -> datetime:
        day = add_months(today, -self.periods.audit_months)
        return timezone.make_aware(datetime.combine(day, time.min))

    def cutoff(self, *, today: date) -> date | None:
        return add_months(today, -self.periods.audit_months)

    def preview(self, *, today: date) -> list[PreviewLine]:
        now = timezone.make_aware(datetime.combine(today, time.min))
        cutoff = self.audit_cutoff(today=today)
        return [
            PreviewLine(
                "sessions.Session", Session.objects.filter(expire_date__lt=now).count(), "session expired"
            ),
            PreviewLine(
                "audit.AuditEvent",
                AuditEvent.objects.filter(created_at__lt=cutoff).count(),
                f"created before {cutoff:%d.%m.%Y} ({self.periods.audit_months} months)",
            ),
        ]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        result = BatchResult()
        if not self.sessions_done:
            self.sessions_done = True
            expired = Session.objects.filter(expire_date__lt=timezone.now())
            count, _ = expired.delete()
            if count:
                result.add("sessions.Session", count)
                self.log_entry(
                    run=run, model="sessions.Session", customer_id=None, ids=[], count=count
                ).save()
            return result
        cutoff = self.audit_cutoff(today=today)
        if self.next_low is None:
            bounds = AuditEvent.objects.filter(created_at__lt=cutoff).aggregate(low=Min("pk"), high=Max("pk"))
            if bounds["low"] is None:
                return None
            self.next_low, self.high_end = bounds["low"], bounds["high"]
        while self.next_low <= self.high_end:
            low, high = self.next_low, self.next_low + self.batch_size
            self.next_low = high
            with connection.cursor() as cursor:
                cursor.execute(
                    DELETE_RANGE_SQL,
                    {"low": low, "high": high, "cutoff": cutoff, "run": run.pk, "category": self.category,
                     "rule": self.rule},
                )  # fmt: skip
                row = cursor.fetchone()
            if row is not None:
                result.add("audit.AuditEvent", row[0])
                return result
        return None
