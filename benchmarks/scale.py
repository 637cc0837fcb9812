"""Benchmark: staff pages, the customer's page, the report, the preview and the nightly purge with a
million customers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python benchmarks/scale.py [--scale 0.1]

It never touches the database in DATABASE_URL: it creates `<name>_bench_scale`, migrates it and
builds, set-based with generate_series (triggers and foreign-key checks off while the consistent
rows go in, as benchmarks/purge.py does), at `--scale 1`:

- 1,000,000 customers (every other one an organisation with an organisation number, a contact for
  one in ten), one contract each: two thirds active, a third ended — 1 % of all customers ended in
  2019 with every invoice past the accounting period (due for the whole purge), the rest ended
  within the last two months (not due yet);
- 5,000,000 invoices with a line each, 10,000,000 correspondence rows, 10,000 access requests;
- one more customer with 10,000 invoices, signed in for /my-data/.

Then, in this process (Django's test client, a superuser signed in with two-factor authentication,
production settings), the median of `--repeat` runs of each staff page, /my-data/, the report, the
preview and the nightly purge of the customer categories, each with its query count and its slowest
query's plan (the index lines of EXPLAIN), and the process's peak RSS. Goals: staff pages p50 <
300 ms, /my-data/ < 100 ms, the report < 10 s, the preview < 30 s, peak RSS < 300 MB. Measured, never
asserted (tests/benchmarks/ runs it tiny so it keeps working).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from benchmarks import databases  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
BIG_CUSTOMER_INVOICES = 10_000
GOALS_MS = {"staff": 300.0, "my_data": 100.0, "report": 10_000.0, "preview": 30_000.0}
RSS_GOAL_MB = 300.0

BUILD_SQL = {
    "customers_customer": """
        INSERT INTO customers_customer (id, kind, name, organisation_number, email, phone,
            street_address, postal_code, city, country, created_at, updated_at)
        SELECT g, CASE WHEN g %% 2 = 0 THEN 'organisation' ELSE 'person' END,
               CASE WHEN g %% 2 = 0 THEN 'Firma ' || g || ' AS' ELSE 'Kunde ' || g END,
               CASE WHEN g %% 2 = 0 THEN (800000000 + g)::text ELSE '' END,
               'kunde' || g || '@example.no', '+47 4' || lpad(g::text, 7, '0'), 'Gate ' || g,
               '0155', 'Oslo', 'NO', timestamptz '2011-01-01', timestamptz '2019-06-30'
          FROM generate_series(1, %(customers)s) AS g
    """,
    "customers_contact": """
        INSERT INTO customers_contact (id, customer_id, name, email, phone, role, portal_access, created_at)
        SELECT g, g * 10, 'Kontakt ' || g, 'kontakt' || g || '@example.no', '', 'Regnskap', false,
               timestamptz '2012-01-01'
          FROM generate_series(1, %(customers)s / 10) AS g
    """,
    # A third ended: 1 % of all customers in 2019 (due), the others within the last two months.
    "customers_contract": """
        INSERT INTO customers_contract (id, customer_id, service, monthly_price, started_on,
            ended_on, created_at)
        SELECT g, g, 'wordpress_hosting', 249.00, date '2011-01-01',
               CASE WHEN g %% 100 = 0 THEN date '2019-06-30'
                    WHEN g %% 3 = 0 THEN current_date - 1 - (g %% 60)
                    ELSE NULL END,
               timestamptz '2011-01-01'
          FROM generate_series(1, %(customers)s) AS g
    """,
    # Five a customer; the due customers' from 2012–2018, everyone else's over the last five years.
    "customers_invoice": """
        INSERT INTO customers_invoice (id, number, kind, credited_invoice_id, customer_id,
            contract_id, issued_on, due_on, billing_name, billing_organisation_number,
            billing_address, billing_email, net_amount, vat_amount, total_amount, created_at)
        SELECT i, 100000 + i, 'invoice', NULL, c, c, issued, issued + 14,
               'Kunde ' || c, '', 'Gate ' || c || E'\\n0155 Oslo', 'kunde' || c || '@example.no',
               249.00, 62.25, 311.25, issued
          FROM generate_series(1, %(customers)s * 5) AS i,
               LATERAL (SELECT (i - 1) / 5 + 1 AS c) AS customer,
               LATERAL (SELECT CASE WHEN c %% 100 = 0
                                    THEN date '2012-01-01' + ((i::bigint * 7919) %% 2557)::int
                                    ELSE current_date - 1 - ((i::bigint * 7919) %% 1800)::int
                               END AS issued) AS derived
    """,
    "customers_invoiceline": """
        INSERT INTO customers_invoiceline (id, invoice_id, description, quantity, unit_price, vat_rate)
        SELECT g, g, 'WordPress hosting', 1, 249.00, 0.25
          FROM generate_series(1, %(customers)s * 5) AS g
    """,
    "customers_correspondence": """
        INSERT INTO customers_correspondence (id, customer_id, channel, external_id, subject,
            opened_at, last_message_at, messages)
        SELECT g, (g - 1) / 10 + 1, 'zendesk', g::text, 'Spørsmål om nettsiden',
               timestamptz '2018-01-01' + g * interval '1 second',
               timestamptz '2018-01-01' + g * interval '1 second',
               '[{"sender": "customer", "body": "Hei, siden er treg."}]'::jsonb
          FROM generate_series(1, %(customers)s * 10) AS g
    """,
    "access_requests_accessrequest": """
        INSERT INTO access_requests_accessrequest (id, customer_id, status, channel,
            identity_verification, received_at, due_on, extension_reason, rejection_reason, progress,
            build_attempts, failure_reason, download_count, export_name, export_sha256)
        SELECT gen_random_uuid(), g * 100 + 1,
               (ARRAY['received', 'rejected', 'expired', 'downloaded'])[1 + g %% 4], 'portal', '',
               now() - (g %% 400) * interval '1 day', current_date - (g %% 400) + 30, '', '', 0, 0,
               '', 0, '', ''
          FROM generate_series(1, %(customers)s / 100) AS g
    """,
}
SEQUENCED = (
    "customers_customer",
    "customers_contact",
    "customers_contract",
    "customers_invoice",
    "customers_invoiceline",
    "customers_correspondence",
)


@dataclass
class Timing:
    title: str
    kind: str  # a key of GOALS_MS
    median_ms: float
    queries: int
    plan: list[str]


# --- its own database -----------------------------------------------------------------------------


def bench_database_url(base_url: str) -> tuple[str, str]:
    return databases.bench_database_url(base_url, "scale")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def build(*, customers: int, progress: Callable[[str], None] = print) -> dict[str, int]:
    """The customers, set-based; returns the id of the big customer and of a searched one."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            for table, sql in BUILD_SQL.items():
                started = time.perf_counter()
                cursor.execute(sql, {"customers": customers})
                progress(f"  {table}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        finally:
            cursor.execute("SET LOCAL session_replication_role = origin")
        for table in SEQUENCED:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    big = big_customer()
    return {"big_customer": big, "customers": customers}


def big_customer() -> int:
    """A customer with BIG_CUSTOMER_INVOICES invoices (a line each) and a sign-in of her own."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from customers.models import Contract, Customer

    with transaction.atomic():
        user = get_user_model().objects.create_user(username="big-customer", email="stor@example.no")
        customer = Customer.objects.create(
            kind=Customer.Kind.ORGANISATION,
            name="Stor Kunde AS",
            organisation_number="999999999",
            email="stor@example.no",
            user=user,
        )
        contract = Contract.objects.create(
            customer=customer,
            service=Contract.Service.WORDPRESS_HOSTING,
            monthly_price=249,
            started_on="2020-01-01",
        )
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                """
                INSERT INTO customers_invoice (number, kind, credited_invoice_id, customer_id,
                    contract_id, issued_on, due_on, billing_name, billing_organisation_number,
                    billing_address, billing_email, net_amount, vat_amount, total_amount, created_at)
                SELECT 900000000 + g, 'invoice', NULL, %(customer)s, %(contract)s,
                       current_date - 1 - (g %% 1800), current_date + 13 - (g %% 1800), 'Stor Kunde AS',
                       '999999999', 'Storgata 1', 'stor@example.no', 249.00, 62.25, 311.25, now()
                  FROM generate_series(1, %(invoices)s) AS g
                """,
                {"customer": customer.pk, "contract": contract.pk, "invoices": BIG_CUSTOMER_INVOICES},
            )
            cursor.execute(
                """
                INSERT INTO customers_invoiceline (invoice_id, description, quantity, unit_price, vat_rate)
                SELECT id, 'WordPress hosting', 1, 249.00, 0.25 FROM customers_invoice
                 WHERE customer_id = %(customer)s
                """,
                {"customer": customer.pk},
            )
            cursor.execute("SET LOCAL session_replication_role = origin")
    return int(customer.pk)


# --- measuring ------------------------------------------------------------------------------------


def plan_of(sql: str) -> list[str]:
    """The scan lines of the query's plan: which index (or none) each table is read with."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        lines = [row[0] for row in cursor.fetchall()]
    return [line.strip() for line in lines if "Scan" in line or "Limit" in line][:8]


def timed(title: str, kind: str, run: Callable[[], Any], *, repeat: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run()  # warm: templates, the ORM's caches, PostgreSQL's buffers
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as captured:
        run()
    slowest = max(captured.captured_queries, key=lambda query: float(query["time"]), default=None)
    plan = plan_of(slowest["sql"]) if slowest and slowest["sql"].lstrip().upper().startswith("SELECT") else []
    timing = Timing(title, kind, 1000 * statistics.median(seconds), len(captured.captured_queries), plan)
    print(f"  {title:<58} {timing.median_ms:>9.0f} ms  {timing.queries:>3} queries", flush=True)
    return timing


def page(client: Any, url: str) -> Callable[[], Any]:
    def get() -> Any:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        return response

    return get


def measure(ids: dict[str, int], *, repeat: int) -> list[Timing]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from customers.models import Customer
    from retention.services import purge_preview
    from tests.security.sign_in import sign_in_with_second_factor

    staff = Client()
    users = get_user_model().objects
    superuser = users.filter(username="bench-staff").first() or users.create_superuser(
        "bench-staff", "staff@example.no", secrets.token_urlsafe(16)
    )
    sign_in_with_second_factor(staff, superuser)
    customer = Client()
    big = Customer.objects.select_related("user").get(pk=ids["big_customer"])
    assert big.user is not None
    customer.force_login(big.user)
    some = ids["customers"] // 2 + 2  # an organisation
    today = timezone.localdate()
    changelist = "/admin/customers/customer/"
    categories = ("correspondence", "invoices", "customer_account", "contracts")
    work: list[tuple[str, str, Callable[[], Any], int]] = [
        ("customers changelist", "staff", page(staff, changelist), repeat),
        ('… "deletion due: overdue"', "staff", page(staff, f"{changelist}?deletion_due=overdue"), repeat),
        ('… "deletion due: within 30 days"', "staff", page(staff, f"{changelist}?deletion_due=30d"), repeat),
        ("… search by e-mail", "staff", page(staff, f"{changelist}?q=kunde{some}@example.no"), repeat),
        (
            "… search by organisation number",
            "staff",
            page(staff, f"{changelist}?q={800000000 + some}"),
            repeat,
        ),
        ("… search by invoice number", "staff", page(staff, f"{changelist}?q={100000 + 5 * some}"), repeat),
        ("access-request changelist", "staff", page(staff, "/admin/access_requests/accessrequest/"), repeat),
        ("a customer's change page", "staff", page(staff, f"{changelist}{some}/change/"), repeat),
        (f"/my-data/, {BIG_CUSTOMER_INVOICES:,} invoices", "my_data", page(customer, "/my-data/"), repeat),
        ("retention_report", "report", lambda: call_command("retention_report", stdout=StringIO()), 1),
        (
            f"purge preview for {today}",
            "preview",
            lambda: [purge_preview(category=key, as_of=today) for key in categories],
            1,
        ),
        (
            "purge preview page (admin)",
            "preview",
            page(staff, f"/admin/retention/purgerun/preview/?as_of={today}"),
            1,
        ),
    ]
    timings = [timed(title, kind, run, repeat=times) for title, kind, run, times in work]
    return timings


def nightly_purge() -> tuple[float, dict[str, int]]:
    """The customer categories' purges as the nightly run takes them: 1 % of the customers due."""
    from retention.services import purge_run

    started = time.perf_counter()
    counts: dict[str, int] = {}
    for category in ("correspondence", "invoices", "customer_account", "contracts"):
        run = purge_run(category=category)
        for model, count in run.counts.items():
            counts[model] = counts.get(model, 0) + count
    return time.perf_counter() - started, counts


def report(timings: list[Timing], *, purge_seconds: float, purged: dict[str, int], scale: float) -> None:
    print(f"\nAt scale {scale} ({int(1_000_000 * scale):,} customers), median of the runs, in-process")
    for timing in timings:
        goal = GOALS_MS[timing.kind]
        verdict = "ok" if timing.median_ms < goal else "over"
        print(f"  {timing.title:<58} {timing.median_ms:>9.0f} ms  (goal < {goal:,.0f} ms: {verdict}), "
              f"{timing.queries} queries")  # fmt: skip
        for line in timing.plan:
            print(f"      {line}")
    print(
        f"  nightly purge, customer categories: {purge_seconds:.1f} s, {sum(purged.values()):,} rows {purged}"
    )
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MB (goal < {RSS_GOAL_MB:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1 = a million customers")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by --keep")
    arguments = parser.parse_args(argv)
    customers = max(300, int(1_000_000 * arguments.scale))

    database_url, name = bench_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    os.environ.update({
        "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "SECURE_TRANSPORT": "0", "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    if not arguments.reuse:
        databases.admin_execute(
            database_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'
        )

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    if arguments.reuse:
        from customers.models import Customer

        call_command("migrate", verbosity=0)  # the indexes of a newer checkout

        big = Customer.objects.get(organisation_number="999999999").pk
        ids = {"big_customer": big, "customers": big - 1}
    else:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        print(f"building {customers:,} customers …", flush=True)
        ids = build(customers=customers)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        timings = measure(ids, repeat=arguments.repeat)
        purge_seconds, purged = nightly_purge()
    finally:
        connection.close()
        if not arguments.keep:
            databases.admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(timings, purge_seconds=purge_seconds, purged=purged, scale=arguments.scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
