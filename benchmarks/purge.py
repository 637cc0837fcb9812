"""Benchmark: the portal's purges against hand-written SQL on identical data, in one run.

    DJANGO_SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python benchmarks/purge.py

It never touches the database in DATABASE_URL: it creates `<name>_bench`, migrates it, builds the
data there once, and measures each side on its own copy (`CREATE DATABASE … TEMPLATE`), dropping
them at the end. Two workloads:

(a) 1,000,000 audit events over four years, half of them past their 24-month window: the portal's
    "sessions_and_audit" purge against batched `DELETE … WHERE id BETWEEN lo AND hi AND
    created_at < cutoff` with the same batch size;
(b) 100,000 customers whose relationship ended years ago, each with a contract, 5 invoices (one
    line each) past the accounting period and 10 correspondence rows: the "correspondence",
    "invoices", "customer_account" and "contracts" purges against set-based DELETEs ordered by
    hand, children first. The portal also writes the proof of deletion; the baseline does not.

Neither side disables a trigger: the holds are checked on both. Both run with pgtrigger's ignore
list set to "none" (see PGTRIGGER_NOTE), and the portal's (b) is measured once more without it,
as deployed. It prints rows/s, the ratio portal/raw, the longest batch transaction of the
portal's runs and the process's peak RSS. Goals:
ratio >= 0.7 for (a), >= 0.5 for (b), longest batch < 1 s, peak RSS < 200 MB. Measured, never
asserted (tests/benchmarks/ only checks, at a tiny scale, that both sides delete the same rows).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import databases

AUDIT_TABLES = ("audit_auditevent",)
CUSTOMER_TABLES = (
    "customers_customer",
    "customers_contract",
    "customers_invoice",
    "customers_invoiceline",
    "customers_correspondence",
)
CUSTOMER_CATEGORIES = ("correspondence", "invoices", "customer_account", "contracts")
INVOICES_PER_CUSTOMER = 5
CORRESPONDENCE_PER_CUSTOMER = 10


@dataclass
class Measurement:
    seconds: float
    deleted: dict[str, int]
    longest_batch_seconds: float | None = None
    logged: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def cursor() -> Any:
    from django.db import connection

    return connection.cursor()


def table_counts(tables: tuple[str, ...]) -> dict[str, int]:
    with cursor() as c:
        counts = {}
        for table in tables:
            c.execute(f"SELECT count(*) FROM {table}")
            counts[table] = c.fetchone()[0]
    return counts


@contextmanager
def measured(tables: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Time the block; afterwards `result["deleted"]` holds the rows that went, per table."""
    before = table_counts(tables)
    result: dict[str, Any] = {}
    started = time.perf_counter()
    yield result
    result["seconds"] = time.perf_counter() - started
    after = table_counts(tables)
    result["deleted"] = {table: before[table] - after[table] for table in tables}


# --- building the data, set-based ----------------------------------------------------------------


def build_log_rows(*, count: int) -> None:
    """`count` audit events created evenly over the last four years, oldest first (ids grow with
    time, as in a log): the older half is past the 24-month window."""
    with cursor() as c:
        c.execute(
            """
            INSERT INTO audit_auditevent (kind, actor_id, customer_id, object_type, object_id, created_at)
            SELECT 'customer_viewed', NULL, g %% 100000, 'customers.Customer', (g %% 100000)::text,
                   now() - interval '48 months' * (1 - g::float8 / %(count)s)
              FROM generate_series(1, %(count)s) AS g
            """,
            {"count": count},
        )


def build_ended_customers(*, count: int, progress: Callable[[str], None] | None = None) -> None:
    """`count` customers whose only contract ended in 2019, each with 5 invoices issued 2012–2018
    (one line each, referring to the contract) and 10 correspondence rows.

    Ids are given explicitly, so children name their parents without a lookup. The rows are
    consistent by construction, so triggers and foreign-key checks are off while they go in
    (`SET LOCAL session_replication_role = replica`, this transaction only): checked row by row,
    the 2.6 million inserts took minutes on two shared cores. Everything the purges later do runs
    with every trigger on."""
    from django.db import transaction

    parameters = {"count": count, "invoices": INVOICES_PER_CUSTOMER, "letters": CORRESPONDENCE_PER_CUSTOMER}
    with transaction.atomic(), cursor() as c:
        for table in CUSTOMER_TABLES:
            c.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")
            if not c.fetchone()[0]:
                raise RuntimeError(f"{table} is not empty; the benchmark builds on empty tables")
        c.execute("SET LOCAL session_replication_role = replica")
        try:
            for table, sql in BUILD_CUSTOMERS_SQL.items():
                started = time.perf_counter()
                c.execute(sql, parameters)
                if progress:
                    progress(f"  {table}: {c.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        finally:  # inside an outer transaction (the smoke test), SET LOCAL would outlive this block
            c.execute("SET LOCAL session_replication_role = origin")
        for table in CUSTOMER_TABLES:
            c.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )


BUILD_CUSTOMERS_SQL = {
    "customers_customer": """
        INSERT INTO customers_customer (id, kind, name, organisation_number, email, phone,
            street_address, postal_code, city, country, created_at, updated_at)
        SELECT g, 'person', 'Kunde ' || g, '', 'kunde' || g || '@example.no',
               '+47 4' || lpad(g::text, 7, '0'), 'Gate ' || g, '0155', 'Oslo', 'NO',
               timestamptz '2011-01-01', timestamptz '2019-06-30'
          FROM generate_series(1, %(count)s) AS g
    """,
    "customers_contract": """
        INSERT INTO customers_contract (id, customer_id, service, monthly_price, started_on,
            ended_on, created_at)
        SELECT g, g, 'wordpress_hosting', 249.00, date '2011-01-01', date '2019-06-30',
               timestamptz '2011-01-01'
          FROM generate_series(1, %(count)s) AS g
    """,
    "customers_invoice": """
        INSERT INTO customers_invoice (id, number, kind, credited_invoice_id, customer_id,
            contract_id, issued_on, due_on, billing_name, billing_organisation_number,
            billing_address, billing_email, net_amount, vat_amount, total_amount, created_at)
        SELECT i, 100000 + i, 'invoice', NULL, c, c, issued, issued + 14,
               'Kunde ' || c, '', 'Gate ' || c || E'\\n0155 Oslo', 'kunde' || c || '@example.no',
               249.00, 62.25, 311.25, issued
          FROM generate_series(1, %(count)s * %(invoices)s) AS i,
               LATERAL (SELECT (i - 1) / %(invoices)s + 1 AS c,
                               date '2012-01-01' + ((i::bigint * 7919) %% 2557)::int AS issued) AS derived
    """,
    "customers_invoiceline": """
        INSERT INTO customers_invoiceline (id, invoice_id, description, quantity, unit_price, vat_rate)
        SELECT g, g, 'WordPress hosting', 1, 249.00, 0.25
          FROM generate_series(1, %(count)s * %(invoices)s) AS g
    """,
    "customers_correspondence": """
        INSERT INTO customers_correspondence (id, customer_id, channel, external_id, subject,
            opened_at, last_message_at, messages)
        SELECT g, (g - 1) / %(letters)s + 1, 'zendesk', g::text, 'Spørsmål om nettsiden',
               timestamptz '2018-01-01' + g * interval '1 minute',
               timestamptz '2018-01-01' + g * interval '1 minute',
               '[{"sender": "customer", "body": "Hei, siden er treg."}]'::jsonb
          FROM generate_series(1, %(count)s * %(letters)s) AS g
    """,
}


def expected_deleted(*, customers: int) -> tuple[dict[str, int], dict[str, int]]:
    """What each workload must delete: (a) the older half of the log, (b) everything built."""
    from retention.purges.audit import SessionAndAuditPurge

    today = _today()
    cutoff = SessionAndAuditPurge().audit_cutoff(today=today)
    with cursor() as c:
        c.execute("SELECT count(*) FROM audit_auditevent WHERE created_at < %s", [cutoff])
        expired = c.fetchone()[0]
    return {"audit_auditevent": expired}, {
        "customers_customer": customers,
        "customers_contract": customers,
        "customers_invoice": customers * INVOICES_PER_CUSTOMER,
        "customers_invoiceline": customers * INVOICES_PER_CUSTOMER,
        "customers_correspondence": customers * CORRESPONDENCE_PER_CUSTOMER,
    }


def _today() -> Any:
    from django.utils import timezone

    return timezone.localdate()


# --- (a) log-like rows ---------------------------------------------------------------------------


def raw_purge_log_rows() -> Measurement:
    """Batched DELETEs by primary-key range, each its own transaction, with the portal's cutoff and
    batch size."""
    from retention.purges.audit import SessionAndAuditPurge

    purge = SessionAndAuditPurge()
    cutoff, size = purge.audit_cutoff(today=_today()), purge.batch_size
    with measured(AUDIT_TABLES) as result, cursor() as c:
        c.execute("SELECT min(id), max(id) FROM audit_auditevent WHERE created_at < %s", [cutoff])
        low, high = c.fetchone()
        if low is not None:
            for start in range(low, high + 1, size):
                c.execute(
                    "DELETE FROM audit_auditevent WHERE id BETWEEN %s AND %s AND created_at < %s",
                    [start, start + size - 1, cutoff],
                )
    return Measurement(result["seconds"], result["deleted"])


def portal_purge_log_rows() -> Measurement:
    from retention.models import PurgeRun
    from retention.services import purge_run

    with measured(AUDIT_TABLES) as result:
        run = purge_run(category="sessions_and_audit")
    if run.status != PurgeRun.Status.FINISHED:
        raise RuntimeError(f"the purge did not finish: {run.errors}")
    return Measurement(result["seconds"], result["deleted"], run.longest_batch_seconds, logged=_logged([run]))


# --- (b) ended customers -------------------------------------------------------------------------


def raw_purge_customers() -> Measurement:
    """Set-based DELETEs in an order that satisfies the foreign keys: correspondence, invoices
    (their lines by ON DELETE CASCADE), contracts, customers. One statement each, autocommit."""
    from retention.purges.customers import accounting_cutoff, customer_data_cutoff
    from retention.windows import RetentionPeriods

    periods, today = RetentionPeriods.from_settings(), _today()
    cutoffs = {
        "ended_before": customer_data_cutoff(today=today, periods=periods),
        "issued_before": accounting_cutoff(today=today, periods=periods),
    }
    with measured(CUSTOMER_TABLES) as result, cursor() as c:
        c.execute("DROP TABLE IF EXISTS due_customer")
        c.execute(
            """
            CREATE TEMPORARY TABLE due_customer AS
            SELECT customer_id AS id FROM customers_contract WHERE customer_id IS NOT NULL
             GROUP BY customer_id
            HAVING bool_and(ended_on IS NOT NULL) AND max(ended_on) < %(ended_before)s
            """,
            cutoffs,
        )
        c.execute("DELETE FROM customers_correspondence WHERE customer_id IN (SELECT id FROM due_customer)")
        c.execute("DELETE FROM customers_invoice WHERE issued_on < %(issued_before)s", cutoffs)
        c.execute("DELETE FROM customers_contract WHERE customer_id IN (SELECT id FROM due_customer)")
        c.execute("DELETE FROM customers_customer WHERE id IN (SELECT id FROM due_customer)")
        c.execute("DROP TABLE due_customer")
    return Measurement(result["seconds"], result["deleted"])


def portal_purge_customers() -> Measurement:
    from retention.models import PurgeRun
    from retention.services import purge_run

    with measured(CUSTOMER_TABLES) as result:
        runs = [purge_run(category=category) for category in CUSTOMER_CATEGORIES]
    for run in runs:
        if run.status != PurgeRun.Status.FINISHED:
            raise RuntimeError(f"the {run.category} purge did not finish: {run.errors}")
    longest = max(run.longest_batch_seconds for run in runs)
    return Measurement(result["seconds"], result["deleted"], longest, logged=_logged(runs))


def _logged(runs: list[Any]) -> dict[str, int]:
    from django.db.models import Sum

    from retention.models import DeletionLog

    rows = DeletionLog.objects.filter(run__in=runs).values("model").annotate(rows=Sum("count"))
    return {row["model"]: row["rows"] for row in rows}


# --- the run: its own databases -------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _use_database(name: str) -> None:
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    arguments = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
    name = urlsplit(url).path.lstrip("/")
    template, copy = f"{name}_bench", f"{name}_bench_run"
    os.environ["DATABASE_URL"] = _with_database(url, template)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    databases.admin_execute(url, f'DROP DATABASE IF EXISTS "{copy}"', f'DROP DATABASE IF EXISTS "{template}"')
    databases.admin_execute(url, f'CREATE DATABASE "{template}"')
    django.setup()
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    build_log_rows(count=arguments.log_rows)
    print(f"  audit_auditevent: {arguments.log_rows:,} rows in {time.perf_counter() - started:.1f} s")
    build_ended_customers(count=arguments.customers, progress=print)
    with cursor() as c:
        c.execute("VACUUM ANALYZE")
    expected = expected_deleted(customers=arguments.customers)
    print(f"built {arguments.log_rows:,} audit events and {arguments.customers:,} ended customers "
          f"in {time.perf_counter() - started:.1f} s (peak RSS {peak_rss_mb():.0f} MB)")  # fmt: skip

    # Each side on its own copy of the data. "deployed" repeats the portal's (b) with pgtrigger's
    # ignore setting left unset, as the portal runs today (see PGTRIGGER_NOTE).
    sides: dict[str, tuple[bool, dict[str, Callable[[], Measurement]]]] = {
        "raw": (True, {"a": raw_purge_log_rows, "b": raw_purge_customers}),
        "portal": (True, {"a": portal_purge_log_rows, "b": portal_purge_customers}),
        "deployed": (False, {"b": portal_purge_customers}),
    }
    results: dict[str, dict[str, Measurement]] = {}
    for side, (fast_path, workloads) in sides.items():
        _use_database("postgres")
        databases.admin_execute(url, f'DROP DATABASE IF EXISTS "{copy}"')
        databases.admin_execute(
            url, f'CREATE DATABASE "{copy}" TEMPLATE "{template}" STRATEGY FILE_COPY', "CHECKPOINT"
        )
        _use_database(copy)
        pgtrigger_fast_path(on=fast_path)
        results[side] = {}
        for workload, measure in workloads.items():
            print(f"measuring {side} ({workload}) …", flush=True)
            results[side][workload] = measurement = measure()
            if measurement.deleted != expected["ab".index(workload)]:
                raise RuntimeError(f"{side} ({workload}) deleted {measurement.deleted}, expected {expected}")
            with cursor() as c:
                c.execute("CHECKPOINT")
    _use_database("postgres")
    if not arguments.keep:
        databases.admin_execute(
            url, f'DROP DATABASE IF EXISTS "{copy}"', f'DROP DATABASE IF EXISTS "{template}"'
        )

    report(results)
    return 0


PGTRIGGER_NOTE = """\
Every trigger made with django-pgtrigger first calls _pgtrigger_should_ignore(), which reads the
setting `pgtrigger.ignore` inside BEGIN … EXCEPTION: while the setting is unset, each call raises
and rolls back a subtransaction. The trigger on invoice lines runs for every line an invoice's
deletion cascades to, and in one statement that cost grows faster than the rows (0.18 ms a line at
10,000 lines, 0.5 ms at 80,000; the raw DELETE of 500,000 invoices had not finished after 12
minutes). So both sides run with `SET pgtrigger.ignore = '{}'` (ignore no trigger: every trigger
still runs and refuses what it refuses), and "deployed" shows the portal without it."""


def pgtrigger_fast_path(*, on: bool) -> None:
    """Set pgtrigger's ignore list to "none" for this session (see PGTRIGGER_NOTE), or unset it."""
    with cursor() as c:
        c.execute("SET pgtrigger.ignore = '{}'" if on else "RESET pgtrigger.ignore")


def report(results: dict[str, dict[str, Measurement]]) -> None:
    titles = {
        "a": "(a) audit events, half expired (sessions_and_audit)",
        "b": "(b) ended customers: correspondence, invoices + lines, contracts, customers",
    }
    goals = {"a": 0.7, "b": 0.5}
    for workload, title in titles.items():
        raw, portal = results["raw"][workload], results["portal"][workload]
        ratio = portal.rows_per_second / raw.rows_per_second
        print(f"\n{title}")
        print(f"  rows deleted        {raw.rows:>12,}")
        print(f"  raw SQL             {raw.rows_per_second:>12,.0f} rows/s  ({raw.seconds:.2f} s)")
        print(f"  portal              {portal.rows_per_second:>12,.0f} rows/s  ({portal.seconds:.2f} s)")
        print(f"  ratio portal/raw    {ratio:>12.2f}   (goal >= {goals[workload]})")
        print(f"  longest batch       {portal.longest_batch_seconds or 0:>12.3f} s (goal < 1 s)")
        print(f"  deletion log        {sum(portal.logged.values()):>12,} rows accounted for")
        deployed = results.get("deployed", {}).get(workload)
        if deployed is not None:
            speed, seconds = deployed.rows_per_second, deployed.seconds
            print(f"  portal as deployed  {speed:>12,.0f} rows/s  ({seconds:.2f} s), pgtrigger.ignore unset")
            print(f"    longest batch     {deployed.longest_batch_seconds or 0:>12.3f} s")
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MB (goal < 200 MB)")
    print(f"\n{PGTRIGGER_NOTE}")


if __name__ == "__main__":
    raise SystemExit(main())
