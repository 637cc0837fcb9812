"""The purge benchmark (benchmarks/purge.py) at a tiny scale, so it cannot rot unnoticed: its data
builders make what it says, and the raw baseline and the portal's purge delete exactly the same,
expected rows, the portal with a deletion log for each. Timing is printed by the benchmark, never
asserted here."""

import pytest
from django.db import connection

from benchmarks import purge as bench

pytestmark = pytest.mark.django_db

LOG_ROWS, CUSTOMERS = 1_000, 100


def rebuild() -> None:
    tables = ", ".join((*bench.AUDIT_TABLES, *bench.CUSTOMER_TABLES))
    with connection.cursor() as cursor:
        # The test runs in one transaction: run the deferred foreign-key checks, then empty.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    bench.build_log_rows(count=LOG_ROWS)
    bench.build_ended_customers(count=CUSTOMERS)


def test_the_builders_make_what_the_benchmark_describes() -> None:
    rebuild()
    assert bench.table_counts(bench.AUDIT_TABLES) == {"audit_auditevent": LOG_ROWS}
    assert bench.table_counts(bench.CUSTOMER_TABLES) == {
        "customers_customer": CUSTOMERS,
        "customers_contract": CUSTOMERS,
        "customers_invoice": CUSTOMERS * 5,
        "customers_invoiceline": CUSTOMERS * 5,
        "customers_correspondence": CUSTOMERS * 10,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(issued_on), max(issued_on), bool_and(number IS NOT NULL) FROM customers_invoice"
        )
        first, last, all_numbered = cursor.fetchone()
    assert (first.year, last.year, all_numbered) == (2012, 2018, True)
    expired, _ = bench.expected_deleted(customers=CUSTOMERS)
    assert 450 <= expired["audit_auditevent"] <= 550  # about half the log is past its window


def test_the_raw_baseline_and_the_portal_delete_the_same_expected_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rebuild()
    expired, customer_rows = bench.expected_deleted(customers=CUSTOMERS)
    raw = {"a": bench.raw_purge_log_rows(), "b": bench.raw_purge_customers()}
    rebuild()
    portal = {"a": bench.portal_purge_log_rows(), "b": bench.portal_purge_customers()}

    assert raw["a"].deleted == portal["a"].deleted == expired
    assert raw["b"].deleted == portal["b"].deleted == customer_rows
    assert portal["a"].logged == {"audit.AuditEvent": expired["audit_auditevent"]}
    assert portal["b"].logged == {
        "customers.Correspondence": CUSTOMERS * 10,
        "customers.Invoice": CUSTOMERS * 5,
        "customers.InvoiceLine": CUSTOMERS * 5,
        "customers.Contract": CUSTOMERS,
        "customers.Customer": CUSTOMERS,
    }
    assert portal["a"].longest_batch_seconds is not None and portal["b"].longest_batch_seconds is not None

    bench.report({"raw": raw, "portal": portal})
    printed = capsys.readouterr().out
    assert "ratio portal/raw" in printed and "peak RSS" in printed
