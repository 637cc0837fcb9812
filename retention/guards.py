"""Hold guards: database triggers that refuse deleting any row about a customer under an active
legal hold, raw SQL included, on every table the data map names and on the rows that reach a
customer by id only (sessions, the admin's history, processor jobs).

Invariants:
- Every table of the data map, every model with a foreign-key path to Customer, and the by-id
  tables in `EXTRA_GUARDS` has a trigger named `retention_legal_hold` (tests/retention/
  test_holds_everywhere.py walks them and deletes a held customer's row in each by raw SQL).
- Which customer a row is about is derived from the data map's `customer_path`, compiled by the
  ORM: adding a table to the data map guards it on the next `migrate` (the guards are installed
  after every migrate, as the retention functions are).
- A guard only refuses; it never changes a row. The SQLSTATE is 23000, like the customer tables'.

Three shapes, chosen per table from its path (see `guard_for`):
- statement-level AFTER DELETE over the transition table, when the deleted row itself names the
  customer (`customer_id`) or a parent that outlives the statement does (`invoice__customer`):
  one query per DELETE statement, however many rows, so the purges' batches pay once;
- row-level BEFORE DELETE, when the path starts with a reverse relation (a user is the customer's
  through `customers_customer.user_id`): the referring row is SET NULL before a statement-level
  trigger could read it, so the row is checked while it still exists;
- the two special cases below (sessions, the admin's history), each documented where it is built.
"""

# ruff: noqa: S608, S611  (SQL composed from model metadata and the data map only; no input)

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.models.expressions import RawSQL

HOLD_MESSAGE = "row of customer % is under a legal hold and cannot be deleted"
TRIGGER = "retention_legal_hold"

# The SQL twin of `LegalHold.objects.active()`: the customer ids under an active hold.
ACTIVE_HOLDS_SQL = (
    "SELECT h.customer_id FROM retention_legalhold h "
    "WHERE h.released_at IS NULL AND (h.ends_on IS NULL OR h.ends_on >= portal_today())"
)


@dataclass(frozen=True)
class Guard:
    table: str
    # Statement level: a query over `deleted_rows` answering customer ids. Row level: a query
    # answering the customer ids of OLD.
    customers_sql: str
    row_level: bool = False
    condition: str = ""  # row level only: refuse only when this holds for OLD

    def sql(self) -> str:
        function = f"retention_refuse_held_{self.table}"
        check = f"""
    SELECT s.customer_id INTO held FROM ({self.customers_sql}) AS s (customer_id)
     WHERE s.customer_id IN ({ACTIVE_HOLDS_SQL})
     LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION '{HOLD_MESSAGE} ({self.table})', held
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;"""
        if self.row_level:
            if self.condition:
                check = f"\n    IF {self.condition} THEN{check}\n    END IF;"
            body, returns = check, "RETURN OLD;"
            trigger = (
                f"CREATE TRIGGER {TRIGGER} BEFORE DELETE ON {self.table} FOR EACH ROW "
                f"EXECUTE FUNCTION {function}();"
            )
        else:
            body, returns = check, "RETURN NULL;"
            trigger = (
                f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON {self.table} REFERENCING OLD TABLE AS "
                f"deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
            )
        return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE held bigint;
BEGIN{body}
    {returns}
END $$;
DROP TRIGGER IF EXISTS {TRIGGER} ON {self.table};
{trigger}
"""


def _compiled(queryset: models.QuerySet[Any, Any]) -> str:
    sql, params = queryset.query.sql_with_params()
    assert not params, f"a guard's query takes no parameters: {sql}"
    return str(sql)


def _customer_column(model: type[models.Model], path: str) -> str | None:
    """The row's own column holding the customer id, when the path is one step on this row."""
    if path == "pk":
        return model._meta.pk.column
    if "__" in path:
        return None
    field = model._meta.get_field(path)
    if field.is_relation and not field.concrete:
        return None
    return str(field.column)  # type: ignore[union-attr]


def _customers_of_deleted(model: type[models.Model], path: str) -> tuple[str, bool]:
    """(SQL answering the customer ids, row level?) for rows of `model` reaching a customer by `path`."""
    column = _customer_column(model, path)
    if column is not None:
        return f"SELECT {column} FROM deleted_rows", False
    first, _, rest = path.partition("__")
    field = model._meta.get_field(first)
    if field.concrete and field.is_relation and rest:
        # A forward foreign key: the parent outlives this statement (or has its own guard).
        target = field.related_model
        assert isinstance(target, type)
        parents = RawSQL(f"SELECT {field.column} FROM deleted_rows", [])
        return _compiled(target._default_manager.filter(pk__in=parents).values(rest)), False
    # A reverse relation: the other row points here, and would be SET NULL before the statement ends.
    old = RawSQL(f"OLD.{model._meta.pk.column}", [])
    return _compiled(model._default_manager.filter(pk=old).values(path)), True


def admin_log_subject_sql() -> str:
    """A SQL function naming the customer a django_admin_log row is about: the row its content
    type and object id name, followed along that table's data-map path."""
    from retention.data_map import tables

    paths: dict[type[models.Model], list[str]] = defaultdict(list)
    for _category, table in tables():
        if table.model != "admin.LogEntry" and table.customer_path not in paths[table.model_class]:
            paths[table.model_class].append(table.customer_path)
    branches = []
    for model, model_paths in paths.items():
        uuid = isinstance(model._meta.pk, models.UUIDField)
        cast, pattern = ("uuid", "'^[0-9a-f-]{36}$'") if uuid else ("bigint", "'^[0-9]{1,18}$'")
        matching = RawSQL(f"CASE WHEN object_key ~ {pattern} THEN object_key::{cast} END", [])
        union = " UNION ALL ".join(
            f"({_compiled(model._default_manager.filter(pk=matching).values(path))})" for path in model_paths
        )
        meta = model._meta
        branches.append(
            f"    WHEN content_type.app_label = '{meta.app_label}' AND content_type.model = "
            f"'{meta.model_name}' THEN RETURN QUERY {union};"
        )
    cases = "\n".join(branches)
    return f"""
CREATE OR REPLACE FUNCTION retention_admin_log_subjects(ct integer, object_key text) RETURNS SETOF bigint
    LANGUAGE plpgsql STABLE AS $$
DECLARE content_type django_content_type%ROWTYPE;
BEGIN
    SELECT * INTO content_type FROM django_content_type WHERE id = ct;
    CASE
{cases}
    ELSE RETURN;
    END CASE;
END $$;
"""


# Rows about a customer that reach her by id, not through a path the data map declares.
def _extra_guards() -> list[Guard]:
    return [
        # The admin's history names the row it is about by content type and id.
        Guard(
            "django_admin_log",
            "SELECT retention_admin_log_subjects(d.content_type_id, d.object_id) FROM deleted_rows d",
        ),
        # Processor jobs hold a customer id of their own, so they outlive the customer.
        Guard("retention_processorjob", "SELECT customer_id FROM deleted_rows"),
        # An expired session of a held customer's user stays with her other sign-ins; a session
        # still in use may end (signing out), so only expired ones are guarded.
        Guard(
            "django_session",
            _compiled(
                apps.get_model("audit.UserSession")
                ._default_manager.filter(session_id=RawSQL("OLD.session_key", []))
                .annotate(
                    subject=models.functions.Coalesce("user__customer__pk", "user__contact__customer_id")
                )
                .values("subject")
            ),
            row_level=True,
            condition="OLD.expire_date < now()",
        ),
    ]


# Tables whose data-map path would guard more than they should, with the guard they get instead.
def _overridden_guards() -> dict[str, Guard]:
    user_session = apps.get_model("audit.UserSession")
    return {
        # A UserSession goes with its session (ON DELETE CASCADE), so signing out deletes it; it is
        # guarded only while its session is still there (the session has its own guard above).
        user_session._meta.db_table: Guard(
            user_session._meta.db_table,
            "SELECT coalesce(c.id, k.customer_id) FROM deleted_rows d "
            "JOIN django_session s ON s.session_key = d.session_id "
            "LEFT JOIN customers_customer c ON c.user_id = d.user_id "
            "LEFT JOIN customers_contact k ON k.user_id = d.user_id",
        ),
    }


def hold_guards() -> list[Guard]:
    """One guard per table about customers, derived from the data map and the model graph."""
    from retention.checks import path_to_customer
    from retention.data_map import tables

    paths: dict[type[models.Model], set[str]] = defaultdict(set)
    for _category, table in tables():
        if table.model != "admin.LogEntry":
            paths[table.model_class].add(table.customer_path)
    for model in apps.get_models():
        path = path_to_customer(model)
        if path is not None and model not in paths:
            paths[model].add("__".join(path) or "pk")
    overridden = _overridden_guards()
    guards = []
    for model, model_paths in sorted(paths.items(), key=lambda item: item[0]._meta.db_table):
        table_name = model._meta.db_table
        if table_name == "retention_legalhold":
            continue  # an active hold refuses its own deletion (ACTIVE_HOLD_TRIGGER_SQL)
        if table_name in overridden:
            guards.append(overridden[table_name])
            continue
        parts = [_customers_of_deleted(model, path) for path in sorted(model_paths)]
        row_level = any(level for _sql, level in parts)
        if row_level:
            # Row level for every path of the table (the transition table does not exist then).
            parts = [
                (
                    _compiled(
                        model._default_manager.filter(pk=RawSQL(f"OLD.{model._meta.pk.column}", [])).values(
                            path
                        )
                    ),
                    True,
                )
                for path in sorted(model_paths)
            ]
        union = " UNION ALL ".join(f"({sql})" for sql, _level in parts)
        guards.append(Guard(table_name, union, row_level=row_level))
    return [*guards, *_extra_guards()]


def install_hold_guards(using_connection: object | None = None) -> None:
    """(Re)create every hold guard; runs after every `migrate`."""
    from retention.db import ACTIVE_HOLD_TRIGGER_SQL

    sql = "\n".join(
        [admin_log_subject_sql(), *(guard.sql() for guard in hold_guards()), ACTIVE_HOLD_TRIGGER_SQL]
    )
    target = using_connection or connection
    with target.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql)


def guarded_tables() -> set[str]:
    """The tables that carry a hold guard in the database now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s", [TRIGGER])
        return {row[0] for row in cursor.fetchall()}
