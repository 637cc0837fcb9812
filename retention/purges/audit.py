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
from django.db.models import BigIntegerField, Max, Min, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.utils import timezone

from audit.models import AuditEvent, UserSession
from retention.models import LegalHold, PurgeRun
from retention.purges.base import BatchResult, Deletion, PreviewLine, Purge, Tonight, active_hold
from retention.windows import add_months

DELETE_RANGE_SQL = """
WITH gone AS (
    DELETE FROM audit_auditevent
     WHERE id >= %(low)s AND id < %(high)s AND created_at < %(cutoff)s
       -- A legal hold keeps every event about its customer (the twin of `active_hold`).
       AND NOT EXISTS (
           SELECT 1 FROM retention_legalhold h
            WHERE h.customer_id = audit_auditevent.customer_id AND h.released_at IS NULL
              AND (h.ends_on IS NULL OR h.ends_on >= %(today)s))
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

    def moment(self, *, today: date) -> datetime:
        """Sessions that expired before this moment are due: now, or for another day its start."""
        if today == timezone.localdate():
            return timezone.now()
        return timezone.make_aware(datetime.combine(today, time.min))

    def expired_sessions(self, *, today: date) -> QuerySet[Session]:
        """Expired sessions, but not those of a customer under a legal hold (her sign-ins stay)."""
        held = LegalHold.objects.active(today=today)
        held_sessions = UserSession.objects.filter(
            Q(user__customer__legal_holds__in=held) | Q(user__contact__customer__legal_holds__in=held)
        ).values("session_id")
        return Session.objects.filter(expire_date__lt=self.moment(today=today)).exclude(
            session_key__in=held_sessions
        )

    def expired_events(self, *, today: date) -> QuerySet[AuditEvent]:
        """The preview's twin of DELETE_RANGE_SQL's condition."""
        return AuditEvent.objects.filter(created_at__lt=self.audit_cutoff(today=today)).exclude(
            active_hold(customer_field="customer_id", today=today)
        )

    def session_steps(self, *, today: date, tonight: Tonight) -> list[Deletion]:
        # The sign-in rows (audit.UserSession) follow their sessions by ON DELETE CASCADE.
        return [
            Deletion(
                tonight.left(self.expired_sessions(today=today)),
                Cast(Value(None), output_field=BigIntegerField()),
            )
        ]

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        tonight = tonight or Tonight()
        cutoff = self.audit_cutoff(today=today)
        sessions = self.count_steps(self.session_steps(today=today, tonight=tonight), tonight=tonight)
        return [
            *(PreviewLine(model, count, "session expired") for model, count in sessions.items()),
            PreviewLine(
                "audit.AuditEvent",
                self.expired_events(today=today).count(),
                f"created before {cutoff:%d.%m.%Y} ({self.periods.audit_months} months)",
            ),
        ]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        result = BatchResult()
        if not self.sessions_done:
            self.sessions_done = True
            self.run_steps(self.session_steps(today=today, tonight=Tonight.ran()), run=run, result=result)
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
                     "rule": self.rule, "today": today},
                )  # fmt: skip
                row = cursor.fetchone()
            if row is not None:
                result.add("audit.AuditEvent", row[0])
                return result
        return None
