"""What every purge shares: the batch contract and the proof-of-deletion rows.

Invariants a purge must keep (the runner in `retention.services` relies on them):
- `delete_batch` deletes at most one short batch, in the caller's transaction, and returns None
  when nothing is left; it logs only rows it deleted itself: it locks them first (`FOR UPDATE SKIP
  LOCKED`), or logs what its `DELETE … RETURNING` returned (audit events), so two workers never
  delete, or log, the same row.
- Every deleted row is counted in a `DeletionLog` written in the same transaction, so a worker
  killed at any point leaves either the batch and its log, or neither.
- Eligibility is computed from `today` alone (never from "since the last run"), so a missed night
  is caught up by the next run and a re-run after a crash finds exactly what is left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import Count, Expression, F, Lookup, Max, Min, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from retention.models import MAX_LOGGED_IDS, DeletionLog, PurgeRun
from retention.windows import RetentionPeriods


class AnyOf(Lookup):
    """`field = ANY(ids)`, with the ids as one array parameter: `AnyOf(F("pk"), ids)`.

    As `field__in=ids`, a batch's 2,000 ids are 2,000 parameters that Django prepares and psycopg
    splits out of the SQL one by one, a fifth of a batch's time (benchmarks/purge.py). Used as an
    expression in `filter()`, never registered as a lookup name."""

    lookup_name = "any_of"
    prepare_rhs = False

    def __init__(self, lhs: Expression | F, rhs: Sequence[int]) -> None:
        super().__init__(lhs, list(rhs))

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} = ANY(%s::bigint[])", (*lhs_params, self.rhs)


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
        self._rules: dict[str, str] = {}
        # The last id `lock_next_batch` took: where the next batch starts.
        self.after_id = 0

    @property
    def rule(self) -> str:
        return self.rule_for(self.category)

    def cutoff(self, *, today: date) -> date | None:
        """Records dated before this day are past their window (None: no single date decides)."""
        return None

    def preview(self, *, today: date) -> list[PreviewLine]:
        raise NotImplementedError

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        raise NotImplementedError

    def lock_next_batch(self, queryset: QuerySet[Any]) -> list[int]:
        """The next `batch_size` ids of `queryset` after the last id this purge took, in id order,
        locked (`FOR UPDATE SKIP LOCKED` on this table only). A keyset walk: each batch starts where
        the last ended (the primary key's index), never re-reading the rows already done, and rows
        another worker holds are left to it."""
        ids = list(
            queryset.filter(pk__gt=self.after_id)
            .order_by("pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[: self.batch_size]
        )
        if ids:
            self.after_id = ids[-1]
        return ids

    def log_grouped(
        self,
        *,
        run: PurgeRun,
        queryset: QuerySet[models.Model],
        customer_field: str,
        category: str | None = None,
    ) -> int:
        """Write one DeletionLog line per customer for the rows of `queryset`, before they are
        deleted; returns how many rows that covers.

        One `INSERT … SELECT … GROUP BY` in the database: no row or id travels to Python and back.
        Building a DeletionLog object per customer in Python took most of a purge's time (100,000
        customers: over half of the run; benchmarks/purge.py)."""
        category = category or self.category
        groups = (
            queryset.order_by()
            .values(customer_field)
            .annotate(
                rows=Count("pk"), ids=ArrayAgg("pk", order_by="pk"), lowest_id=Min("pk"), highest_id=Max("pk")
            )
            .values_list(customer_field, "rows", "ids", "lowest_id", "highest_id")
        )
        try:
            groups_sql, groups_params = groups.query.sql_with_params()
        except EmptyResultSet:  # e.g. `pk__in=[]`: nothing to log
            return 0
        # Composed from Django's own compiled query and model metadata; every value is a parameter.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH logged AS (
                    INSERT INTO {DeletionLog._meta.db_table} (run_id, category, model, customer_id, count,
                                record_ids, first_id, last_id, rule, deleted_at)
                    SELECT %s, %s, %s, groups.customer_id, groups.rows, groups.ids[1:{MAX_LOGGED_IDS}],
                           groups.lowest_id, groups.highest_id, %s, %s
                      FROM ({groups_sql}) AS groups (customer_id, rows, ids, lowest_id, highest_id)
                    RETURNING count
                )
                SELECT coalesce(sum(count), 0) FROM logged
                """,  # noqa: S608
                [
                    run.pk,
                    category,
                    queryset.model._meta.label,
                    self.rule_for(category),
                    timezone.now(),
                    *groups_params,
                ],
            )
            return int(cursor.fetchone()[0])

    def rule_for(self, category: str) -> str:
        """The data map's rule name for `category`, looked up once per purge (building the data
        map takes ~0.2 ms, which a lookup per log line turned into minutes)."""
        if category not in self._rules:
            from retention.data_map import category as data_category

            self._rules[category] = data_category(category).rule
        return self._rules[category]

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
        category = category or self.category
        return DeletionLog.for_rows(
            run=run,
            category=category,
            rule=self.rule_for(category),
            model=model,
            customer_id=customer_id,
            ids=ids,
            count=count,
        )
