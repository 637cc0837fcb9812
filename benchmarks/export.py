"""Benchmark: the export build against the raw limit for the same output, measured in the same run.

    python benchmarks/export.py [--rows 100000] [--invoices 5000] [--repeat 3] [--keep]

One customer with 100,000 correspondence rows and 5,000 invoices (each with a line and a payment)
is written set-based into a database of the benchmark's own, `<name>_bench_export` (created and
migrated here; the configured database is never touched), and a second customer with twice as many.
For each, in a fresh process per measurement (ru_maxrss is a high-water mark, so a process measures
one build only):

- portal: `access_requests.export.export_build`, the whole service: claim, every data-map table to
  CSV and data.json, index.html, manifest.json, the ZIP saved to (local) storage, the row marked ready;
- raw: psycopg `COPY (SELECT …) TO STDOUT` of the same rows and columns, once as CSV and once as
  JSON (`row_to_json`), each streamed into a ZIP entry at the same deflate level.

It prints both times, their ratio and each build's peak RSS. Goals: ratio <= 2.5; RSS < 150 MB and
flat when the rows double.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import databases  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
RATIO_GOAL = 2.5
RSS_GOAL_MB = 150.0
# "Flat": doubling the rows may grow the peak by at most this much (allocator noise, larger buffers).
RSS_FLAT_MB = 10.0


# --- The database of the benchmark's own ------------------------------------------------------------


def bench_database_url(base_url: str) -> tuple[str, str]:
    return databases.bench_database_url(base_url, "export")


def _maintenance_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def recreate_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_maintenance_url(url), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_maintenance_url(url), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def configure_environment(*, database_url: str, media_root: str) -> None:
    """Settings for this process and its children: the bench database, local files in a temporary
    directory, and mail that goes nowhere."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["MEDIA_ROOT"] = media_root
    os.environ["EMAIL_URL"] = "dummymail://"
    os.environ["AWS_STORAGE_BUCKET_NAME"] = ""
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret-0123456789-abcdefghij")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def setup_django() -> None:
    import django

    django.setup()


# --- The data ------------------------------------------------------------------------------------

CORRESPONDENCE_SQL = """
INSERT INTO customers_correspondence
    (customer_id, channel, external_id, subject, opened_at, last_message_at, messages)
SELECT %(customer)s,
       CASE WHEN g %% 3 = 0 THEN 'email' ELSE 'zendesk' END,
       'bench-' || %(customer)s || '-' || g,
       'Spørsmål om nettsiden, sak ' || g,
       now() - make_interval(mins => g) - interval '2 days',
       now() - make_interval(mins => g),
       jsonb_build_array(
           jsonb_build_object('sent_at', now() - make_interval(mins => g) - interval '2 days',
                              'sender', 'customer',
                              'body', 'Hei! Nettsiden vår (sak ' || g || ') er treg i dag, og '
                                      || 'kontaktskjemaet svarer ikke. Kan dere se på det? Hilsen kunden'),
           jsonb_build_object('sent_at', now() - make_interval(mins => g),
                              'sender', 'support',
                              'body', 'Hei, vi har tømt hurtigbufferen og oppdatert utvidelsene. '
                                      || 'Si fra om det fortsatt går tregt. Vennlig hilsen support'))
  FROM generate_series(1, %(rows)s) AS g
"""

INVOICES_SQL = """
WITH drafts AS (
    INSERT INTO customers_invoice
        (kind, customer_id, billing_name, billing_organisation_number, billing_address, billing_email,
         net_amount, vat_amount, total_amount, created_at)
    SELECT 'invoice', c.id, c.name, c.organisation_number,
           c.street_address || E'\\n' || c.postal_code || ' ' || c.city, c.email,
           249.00, 62.25, 311.25, now()
      FROM customers_customer c, generate_series(1, %(invoices)s)
     WHERE c.id = %(customer)s
    RETURNING id
)
INSERT INTO customers_invoiceline (invoice_id, description, quantity, unit_price, vat_rate)
SELECT id, 'WordPress hosting, 1 month', 1.00, 249.00, 25.00 FROM drafts
"""

# Lines go in while the invoices are drafts (the database refuses lines on an issued invoice).
ISSUE_SQL = """
UPDATE customers_invoice
   SET issued_on = date '2024-01-01' + (id %% 700)::int,
       due_on = date '2024-01-15' + (id %% 700)::int,
       number = 100000000 + id
 WHERE customer_id = %(customer)s AND issued_on IS NULL
"""

PAYMENTS_SQL = """
INSERT INTO customers_payment (invoice_id, amount, paid_on, reference)
SELECT id, total_amount, issued_on + 10, 'KID' || id FROM customers_invoice WHERE customer_id = %(customer)s
"""


def seed_customer(*, correspondence: int, invoices: int, label: str) -> int:
    """One customer with `correspondence` threads and `invoices` issued invoices, each with a line and
    a payment, written set-based; returns the customer's id."""
    from django.db import connection, transaction

    from customers.models import Contact, Contract, Customer

    with transaction.atomic():
        customer = Customer.objects.create(
            kind=Customer.Kind.PERSON,
            name=f"Benchmark Kunde {label}",
            email=f"bench-{label}@example.no",
            phone="+47 90000000",
            street_address="Storgata 1",
            postal_code="0155",
            city="Oslo",
        )
        Contact.objects.create(customer=customer, name="Kontakt", email=f"kontakt-{label}@example.no")
        Contract.objects.create(
            customer=customer,
            service=Contract.Service.WORDPRESS_HOSTING,
            monthly_price=249,
            started_on="2024-01-01",
        )
        parameters = {"customer": customer.pk, "rows": correspondence, "invoices": invoices}
        with connection.cursor() as cursor:
            cursor.execute(CORRESPONDENCE_SQL, parameters)
            cursor.execute(INVOICES_SQL, parameters)
            cursor.execute(ISSUE_SQL, parameters)
            cursor.execute(PAYMENTS_SQL, parameters)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return int(customer.pk)


# --- The two builds --------------------------------------------------------------------------------


def raw_entry_name(position: int, category_key: str, model: str) -> str:
    # Numbered: a category may hold one model twice (auth.User for customers and for contacts).
    return f"{category_key}/{position:02d}-{model}"


def raw_export(*, customer_id: int, archive: IO[bytes]) -> None:
    """The raw limit: each data-map table's rows for the customer, selected by the same SQL the
    export runs, copied by PostgreSQL as CSV and as JSON straight into ZIP entries."""
    from django.db import connection

    from access_requests.export import COMPRESSION, COMPRESSION_LEVEL
    from retention import data_map

    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with zipfile.ZipFile(archive, "w", compression=COMPRESSION, compresslevel=COMPRESSION_LEVEL) as zipped:
        for position, (category, table) in enumerate(data_map.tables()):
            queryset = table.rows_for_customer(customer_id).values_list(*table.fields)
            select, parameters = queryset.query.sql_with_params()
            name = raw_entry_name(position, category.key, table.model)
            with raw.cursor() as cursor:
                with (
                    zipped.open(f"{name}.csv", "w", force_zip64=True) as out,
                    cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)", parameters) as copy,
                ):
                    for chunk in copy:
                        out.write(chunk)
                with (
                    zipped.open(f"{name}.json", "w", force_zip64=True) as out,
                    cursor.copy(
                        f"COPY (SELECT row_to_json(t) FROM ({select}) t) TO STDOUT", parameters
                    ) as copy,
                ):
                    for chunk in copy:
                        out.write(chunk)


def portal_export(*, customer_id: int) -> Any:
    """The portal's build, as the task runs it, for a new request of the customer's."""
    from django.utils import timezone

    from access_requests.clock import gdpr_due_date
    from access_requests.export import export_build
    from access_requests.models import AccessRequest

    access_request = AccessRequest.objects.create(
        customer_id=customer_id, due_on=gdpr_due_date(timezone.localdate())
    )
    built = export_build(access_request=access_request)
    assert built is not None and built.status == AccessRequest.Status.READY, "the export was not built"
    return built


def forget_export(access_request: Any) -> None:
    """Remove a benchmark build, so the customer may be built again (one open request at a time)."""
    from access_requests.models import AccessRequest
    from access_requests.storage import delete_export

    delete_export(access_request.export_name)
    AccessRequest.objects.filter(pk=access_request.pk).delete()


def warm_up(kind: str, customer_id: int) -> None:
    """A worker imports the URL configuration, the templates and the database's types once, at its
    first task; a tiny build does that before the build that is timed."""
    if kind == "portal":
        forget_export(portal_export(customer_id=customer_id))
    else:
        with tempfile.TemporaryFile() as archive:
            raw_export(customer_id=customer_id, archive=archive)


def measure(kind: str, customer_id: int) -> dict[str, float]:
    """One build in this process: seconds, size and this process's peak RSS."""
    if kind == "portal":
        started = time.perf_counter()
        built = portal_export(customer_id=customer_id)
        seconds = time.perf_counter() - started
        size = int(built.export_size)
        forget_export(built)
    else:
        with tempfile.TemporaryFile() as archive:
            started = time.perf_counter()
            raw_export(customer_id=customer_id, archive=archive)
            seconds = time.perf_counter() - started
            size = archive.seek(0, os.SEEK_END)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {"seconds": seconds, "size": size, "rss_mb": peak_kb / 1024}


def measure_in_child(kind: str, customer_id: int, warm_up_customer_id: int) -> dict[str, float]:
    arguments = [
        "--child",
        kind,
        "--customer",
        str(customer_id),
        "--warm-up-customer",
        str(warm_up_customer_id),
    ]
    result = subprocess.run(
        [sys.executable, __file__, *arguments],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the {kind} build failed:\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# --- The report ----------------------------------------------------------------------------------


def best_of_both(customer_id: int, warm_up_customer_id: int, repeat: int) -> dict[str, dict[str, float]]:
    """Both builds `repeat` times, taking turns, so a busy moment of the machine hits both alike;
    the fastest run of each counts, and the highest peak RSS."""
    runs: dict[str, list[dict[str, float]]] = {"portal": [], "raw": []}
    for _ in range(repeat):
        for kind, found in runs.items():
            found.append(measure_in_child(kind, customer_id, warm_up_customer_id))
    return {
        kind: {
            "seconds": min(run["seconds"] for run in found),
            "rss_mb": max(run["rss_mb"] for run in found),
            "size": found[0]["size"],
        }
        for kind, found in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="correspondence rows of the 1x customer")
    parser.add_argument("--invoices", type=int, default=5_000, help="invoices of the 1x customer")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--child", choices=["portal", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--customer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm-up-customer", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.child:  # a measuring process: the parent has set the environment up
        setup_django()
        warm_up(arguments.child, arguments.warm_up_customer)
        print(json.dumps(measure(arguments.child, arguments.customer)))
        return

    url, name = bench_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as media_root:
        configure_environment(database_url=url, media_root=media_root)
        print(f"database {name} (created for this run), exports under {media_root}", flush=True)
        recreate_database(url, name)
        try:
            setup_django()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            customers = {
                scale: seed_customer(
                    correspondence=arguments.rows * scale,
                    invoices=arguments.invoices * scale,
                    label=f"{scale}x",
                )
                for scale in (1, 2)
            }
            warm_up_customer = seed_customer(correspondence=10, invoices=2, label="warm-up")
            print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
            from django.db import connections

            connections.close_all()
            report(customers, warm_up_customer, arguments)
        finally:
            if not arguments.keep:
                from django.db import connections

                connections.close_all()
                drop_database(url, name)


def report(customers: dict[int, int], warm_up_customer: int, arguments: argparse.Namespace) -> None:
    from access_requests.export import COMPRESSION_LEVEL

    print(
        f"\none customer: {arguments.rows:,} correspondence rows and {arguments.invoices:,} invoices "
        f"(each with a line and a payment), and one with twice that; deflate level {COMPRESSION_LEVEL}; "
        f"best of {arguments.repeat}, each build in a fresh process\n"
    )
    print(
        f"{'':>6} {'portal s':>9} {'raw s':>7} {'ratio':>6} {'portal RSS':>11} {'raw RSS':>8} {'ZIP MB':>7}"
    )
    results = {}
    for scale, customer_id in customers.items():
        both = best_of_both(customer_id, warm_up_customer, arguments.repeat)
        portal, raw = both["portal"], both["raw"]
        ratio = portal["seconds"] / raw["seconds"]
        results[scale] = (portal, raw, ratio)
        print(
            f"{scale}x{'':>4} {portal['seconds']:>9.2f} {raw['seconds']:>7.2f} {ratio:>6.2f} "
            f"{portal['rss_mb']:>8.0f} MB {raw['rss_mb']:>5.0f} MB {portal['size'] / 1e6:>7.1f}",
            flush=True,
        )
    worst_ratio = max(ratio for _portal, _raw, ratio in results.values())
    peak = max(portal["rss_mb"] for portal, _raw, _ratio in results.values())
    growth = results[2][0]["rss_mb"] - results[1][0]["rss_mb"]
    print()
    verdict = "met" if worst_ratio <= RATIO_GOAL else "MISSED"
    print(f"ratio portal/raw {worst_ratio:.2f} (goal <= {RATIO_GOAL}): {verdict}")
    print(
        f"peak RSS {peak:.0f} MB (goal < {RSS_GOAL_MB:.0f} MB): {'met' if peak < RSS_GOAL_MB else 'MISSED'}"
    )
    print(
        f"RSS growth when the rows double {growth:+.1f} MB (flat: <= {RSS_FLAT_MB:.0f} MB): "
        f"{'met' if growth <= RSS_FLAT_MB else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
