"""What every purge shares: the batch contract and the proof-of-deletion rows.

Invariants a purge must keep (the runner in `retention.services` relies on them):
- `delete_batch` deletes at most one short batch, in the caller's transaction, and returns None
  when nothing is left; it never deletes a row it did not lock (`FOR UPDATE SKIP LOCKED`), so two
  workers never delete, or log, the same row.
- Every deleted row is counted in a `DeletionLog` written in the same transaction, so a worker
  killed at any point leaves either the batch and its log, or neither.
- Eligibility is computed from `today` alone (never from "since the last run"), so a missed night
  is caught up by the next run and a re-run after a crash finds exactly what is left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import models
from django.db.models import Count, QuerySet

from retention.models import DeletionLog, PurgeRun
from retention.windows import RetentionPeriods

# A DeletionLog line lists the ids it deleted up to this many; beyond it the first and last id
# and the count stand for them (a customer's invoices fit, a million log rows need not).
MAX_LOGGED_IDS = 1000


@dataclass(frozen=True)
class PreviewLine:
    """One line of a dry run: what would go, how many, and why."""

    model: str
    count: int
    reason: str


@dataclass
class BatchResult:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)

    def add(self, model: str, count: int) -> None:
        self.counts[model] += count


class Purge:
    """One data category's purge. Subclasses set `category` and implement the three methods."""

    category: str
    batch_size: int = 500

    def __init__(self, *, periods: RetentionPeriods | None = None, batch_size: int | None = None) -> None:
        self.periods = periods or RetentionPeriods.from_settings()
        if batch_size is not None:
            self.batch_size = batch_size

    @property
    def rule(self) -> str:
        from retention.data_map import category

        return category(self.category).rule

    def cutoff(self, *, today: date) -> date | None:
        """Records dated before this day are past their window (None: no single date decides)."""
        return None

    def preview(self, *, today: date) -> list[PreviewLine]:
        raise NotImplementedError

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        raise NotImplementedError

    def log_grouped(
        self,
        *,
        run: PurgeRun,
        queryset: QuerySet[models.Model],
        customer_field: str,
        category: str | None = None,
    ) -> int:
        """Write one DeletionLog line per customer for the rows of `queryset`, before they are
        deleted; returns how many rows that covers."""
        label = queryset.model._meta.label
        groups = (
            queryset.order_by()
            .values(customer_field)
            .annotate(rows=Count("pk"), ids=ArrayAgg("pk", ordering="pk"))
            .values_list(customer_field, "rows", "ids")
        )
        entries = [
            self.log_entry(
                run=run, model=label, customer_id=customer_id, ids=ids, count=rows, category=category
            )
            for customer_id, rows, ids in groups
        ]
        DeletionLog.objects.bulk_create(entries, batch_size=1000)
        return sum(entry.count for entry in entries)

    def log_entry(
        self,
        *,
        run: PurgeRun,
        model: str,
        customer_id: int | None,
        ids: Iterable[int],
        count: int,
        category: str | None = None,
    ) -> DeletionLog:
        from retention.data_map import category as data_category

        ids = list(ids)
        category = category or self.category
        return DeletionLog(
            run=run,
            category=category,
            model=model,
            customer_id=customer_id,
            count=count,
            record_ids=ids[:MAX_LOGGED_IDS],
            first_id=min(ids) if ids else None,
            last_id=max(ids) if ids else None,
            rule=data_category(category).rule,
        )
