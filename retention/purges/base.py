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
from typing import Any, cast

from django.contrib.admin.models import LogEntry
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import (
    Count,
    Exists,
    Expression,
    F,
    Lookup,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from retention.models import MAX_LOGGED_IDS, DeletionLog, LegalHold, PurgeRun
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


def admin_history_of(rows: QuerySet[models.Model]) -> QuerySet[LogEntry]:
    """The admin's history entries (django_admin_log) about the rows of `rows`: the entries name
    their object by content type and the primary key as text."""
    meta = rows.model._meta
    as_text = rows.order_by().annotate(history_object_id=Cast("pk", output_field=TextField()))
    return LogEntry.objects.filter(
        content_type__app_label=meta.app_label,
        content_type__model=meta.model_name,
        object_id__in=as_text.values("history_object_id"),
    )


def _cast_target(pk_field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    if isinstance(pk_field, models.IntegerField):
        return models.BigIntegerField()
    return models.UUIDField() if isinstance(pk_field, models.UUIDField) else models.TextField()


def active_hold(*, customer_field: str, today: date) -> Exists:
    """The row's customer (`customer_field`) is under a legal hold active on `today`: every purge
    excludes such rows, and the database's hold guards (retention/guards.py) refuse them anyway."""
    return Exists(LegalHold.objects.active(today=today).filter(customer_id=OuterRef(customer_field)))


class Tonight:
    """What the purges that run earlier the same night delete, by primary key, so a preview of one
    purge sees the database as the run will find it. A preview materialises each step's keys (the
    run's own queries over a batch of ids then serve the preview too, and nothing nests). A run
    passes `Tonight.ran()`: the earlier purges have really deleted their rows by then, so there
    is nothing to subtract and the run's queries stay as they were."""

    def __init__(self, *, recording: bool = True) -> None:
        self.recording = recording
        self.going: dict[str, set[Any]] = defaultdict(set)
        # Customers whose data the processors erase earlier tonight (the correspondence purge).
        self.erased_customers: list[int] | None = None

    @classmethod
    def ran(cls) -> Tonight:
        return cls(recording=False)

    def take(self, queryset: QuerySet[Any]) -> list[Any]:
        """The keys of the rows of `queryset` still there, now counted as gone."""
        keys = list(self.left(queryset).order_by().values_list("pk", flat=True).distinct())
        self.going[queryset.model._meta.label].update(keys)
        return keys

    def left(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rows of `queryset` still there when this purge runs."""
        gone = self.going.get(queryset.model._meta.label)
        return queryset.exclude(pk__in=list(gone)) if gone else queryset

    def going_of(self, model: type[models.Model]) -> list[Any]:
        """The keys of the rows of `model` that go earlier tonight (none for a run)."""
        return list(self.going.get(model._meta.label, ()))


def cascades(queryset: QuerySet[Any], *, depth: int = 3) -> list[QuerySet[Any]]:
    """The rows the database or Django deletes with the rows of `queryset` (ON DELETE CASCADE and
    CASCADE foreign keys, followed a few levels), read from the model graph, so a new child table
    is counted, logged and previewed without anyone listing it. Link tables of many-to-many
    fields are left out: they hold no data of their own."""
    found: list[QuerySet[Any]] = []
    if depth == 0:
        return found
    for relation in queryset.model._meta.get_fields(include_hidden=True):
        if (
            not relation.auto_created
            or relation.concrete
            or not (relation.one_to_many or relation.one_to_one)
        ):
            continue
        on_delete = getattr(relation, "on_delete", None)
        if on_delete not in (models.CASCADE, models.DB_CASCADE):
            continue
        child = cast("type[models.Model]", relation.related_model)
        if child._meta.auto_created:
            continue
        foreign_key = relation.field
        target = foreign_key.target_field.attname
        rows = child._default_manager.filter(
            **{f"{foreign_key.name}__in": queryset.order_by().values(target)}
        )
        found.append(rows)
        found.extend(cascades(rows, depth=depth - 1))
    return found


@dataclass(frozen=True)
class Deletion:
    """One step of a purge: the rows it deletes (cascades follow), who each is about, and the
    data-map category the deletion log files them under (None: the purge's own)."""

    queryset: QuerySet[Any]
    customer_field: str | Expression | F | Subquery
    category: str | None = None

    @property
    def label(self) -> str:
        return str(self.queryset.model._meta.label)


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

    # Where the purge runs in an erasure on request (`erasure_of`: one customer whose window is
    # closed now), lowest first; None: not part of one (accounting records, server logs).
    erasure_step: int | None = None

    def __init__(
        self,
        *,
        periods: RetentionPeriods | None = None,
        batch_size: int | None = None,
        erasure_of: int | None = None,
    ) -> None:
        self.periods = periods or RetentionPeriods.from_settings()
        # An erasure on request: this customer only, as if her window had closed (holds still apply).
        self.erasure_of = erasure_of
        if batch_size is not None:
            self.batch_size = batch_size
        self._rules: dict[str, str] = {}
        # The last id `lock_next_batch` took: where the next batch starts.
        self.after_id = 0
        self.admin_history_deleted = 0

    @property
    def rule(self) -> str:
        return self.rule_for(self.category)

    def cutoff(self, *, today: date) -> date | None:
        """Records dated before this day are past their window (None: no single date decides)."""
        return None

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
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
        customer_field: str | Expression | F | Subquery,
        category: str | None = None,
    ) -> int:
        """Write one DeletionLog line per customer for the rows of `queryset`, before they are
        deleted; returns how many rows that covers. `customer_field` names the customer (a lookup,
        or an expression such as the customer id kept on a record that outlived its customer).

        The admin's history of these rows (django_admin_log, which names them by their `__str__`)
        is logged and deleted with them, here, so no purge can forget it.

        One `INSERT … SELECT … GROUP BY` in the database: no row or id travels to Python and back.
        Building a DeletionLog object per customer in Python took most of a purge's time (100,000
        customers: over half of the run; benchmarks/purge.py)."""
        category = category or self.category
        subject = F(customer_field) if isinstance(customer_field, str) else customer_field
        if isinstance(queryset.model._meta.pk, models.IntegerField):
            identified: dict[str, Any] = {
                "ids": ArrayAgg("pk", order_by="pk"),
                "lowest_id": Min("pk"),
                "highest_id": Max("pk"),
            }
        else:  # session keys, request UUIDs: the log keeps bigint ids, so only the count
            nothing = Cast(Value(None), output_field=models.BigIntegerField())
            identified = {
                "ids": Cast(Value([]), output_field=ArrayField(models.BigIntegerField())),
                "lowest_id": nothing,
                "highest_id": nothing,
            }
        groups = (
            queryset.order_by()
            .values(deletion_subject=subject)
            .annotate(rows=Count("pk"), **identified)
            .values_list("deletion_subject", "rows", "ids", "lowest_id", "highest_id")
        )
        try:
            groups_sql, groups_params = groups.query.sql_with_params()
        except EmptyResultSet:  # e.g. `pk__in=[]`: nothing to log
            return 0
        if queryset.model is not LogEntry:
            self.delete_admin_history(run=run, queryset=queryset, subject=subject, category=category)
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

    def delete_admin_history(
        self,
        *,
        run: PurgeRun,
        queryset: QuerySet[models.Model],
        subject: Expression | F | Subquery,
        category: str,
    ) -> int:
        """Log and delete the admin's history of the rows of `queryset` (which still exist), each
        entry under the customer its row is about. One cheap EXISTS when there is none."""
        history = admin_history_of(queryset)
        if not history.exists():
            return 0
        pk_field = queryset.model._meta.pk
        about = queryset.filter(pk=Cast(OuterRef("object_id"), output_field=_cast_target(pk_field)))
        entries = LogEntry.objects.filter(pk__in=history.values("pk")).annotate(
            history_subject=Subquery(about.values(subject=subject).values("subject")[:1])
        )
        count = self.log_grouped(
            run=run, queryset=entries, customer_field="history_subject", category=category
        )
        LogEntry.objects.filter(pk__in=history.values("pk")).delete()
        self.admin_history_deleted += count
        return count

    # --- Steps: one description of what goes, executed by the run and counted by the preview ---

    def subject_of(self, model: type[models.Model]) -> Expression | F:
        """Who a row of `model` is about, from the data map's paths for it (the customer id, or the
        id kept on a record that outlived its customer); NULL for rows about no customer."""
        from retention.data_map import tables

        paths = [table.customer_path for _category, table in tables() if table.model == model._meta.label]
        names = [f"{path}__pk" if path not in ("pk", "customer_id") else path for path in paths if path]
        if any(field.name == "former_customer_id" for field in model._meta.concrete_fields):
            names.append("former_customer_id")
        if not names:
            return Cast(Value(None), output_field=models.BigIntegerField())
        if len(names) == 1:
            return F(names[0])
        return Coalesce(*(F(name) for name in names))

    def category_of(self, model: type[models.Model]) -> str:
        """The data-map category a model's rows are filed under (the first that holds it)."""
        from retention.data_map import tables

        label = model._meta.label
        return next((category.key for category, table in tables() if table.model == label), self.category)

    def count_steps(self, steps: Iterable[Deletion], *, tonight: Tonight) -> dict[str, int]:
        """What `run_steps` would delete, per model, cascades and the admin's history included,
        counted on the rows still there after what goes earlier tonight (and earlier steps)."""
        counts: dict[str, int] = defaultdict(int)
        for step in steps:
            # Cascades first: they are found through the step's rows, which must not be taken yet.
            for rows in (*cascades(step.queryset), step.queryset):
                model = rows.model
                if model is not LogEntry:
                    history = len(tonight.take(admin_history_of(tonight.left(rows))))
                    if history:
                        counts[LogEntry._meta.label] += history
                counts[model._meta.label] += len(tonight.take(rows))
        return counts

    def run_steps(self, steps: Iterable[Deletion], *, run: PurgeRun, result: BatchResult) -> None:
        """Log, then delete, each step's rows with what cascades from them, in order."""
        for step in steps:
            rows = [step.queryset, *cascades(step.queryset)]
            for index, queryset in enumerate(rows):
                category = step.category if index == 0 else self.category_of(queryset.model)
                subject = step.customer_field if index == 0 else self.subject_of(queryset.model)
                count = self.log_grouped(
                    run=run, queryset=queryset, customer_field=subject, category=category
                )
                if count:
                    result.add(queryset.model._meta.label, count)
            step.queryset.delete()

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
