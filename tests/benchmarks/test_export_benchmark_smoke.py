"""The export benchmark (benchmarks/export.py) at a tiny scale, so it cannot rot unnoticed: its seed
makes the customer it describes, and the raw baseline and the portal's build export the same rows of
the same tables. Timing is printed by the benchmark, never asserted here."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile

import pytest
from django.core.files.storage import storages

from access_requests.models import AccessRequest
from benchmarks import export as bench
from customers.models import Correspondence, Invoice, InvoiceLine, Payment
from retention import data_map
from tests.access_requests.conftest import read_export

pytestmark = pytest.mark.django_db

THREADS, INVOICES = 300, 20


def csv_data_rows(content: bytes) -> int:
    return len(list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))) - 1


def test_the_bench_database_sits_beside_the_configured_one() -> None:
    assert bench.bench_database_url("postgres://postgres@127.0.0.1:5432/portal") == (
        "postgres://postgres@127.0.0.1:5432/portal_bench_export",
        "portal_bench_export",
    )


def test_the_seed_makes_the_customer_the_benchmark_describes() -> None:
    customer_id = bench.seed_customer(correspondence=THREADS, invoices=INVOICES, label="smoke")
    assert Correspondence.objects.filter(customer_id=customer_id).count() == THREADS
    invoices = Invoice.objects.filter(customer_id=customer_id)
    assert invoices.count() == INVOICES
    assert invoices.filter(issued_on__isnull=False, number__isnull=False).count() == INVOICES
    assert InvoiceLine.objects.filter(invoice__customer_id=customer_id).count() == INVOICES
    assert Payment.objects.filter(invoice__customer_id=customer_id).count() == INVOICES
    messages = Correspondence.objects.filter(customer_id=customer_id).values_list("messages", flat=True)[0]
    assert [message["sender"] for message in messages] == ["customer", "support"]


@pytest.mark.usefixtures("export_storage_dir")
def test_the_raw_baseline_and_the_portal_export_the_same_rows() -> None:
    customer_id = bench.seed_customer(correspondence=THREADS, invoices=INVOICES, label="smoke")
    # The portal first: the request it answers is itself a row of the export, for both.
    built = bench.portal_export(customer_id=customer_id)
    portal = read_export(built)
    with tempfile.TemporaryFile() as archive:
        bench.raw_export(customer_id=customer_id, archive=archive)
        archive.seek(0)
        with zipfile.ZipFile(archive) as raw_zip:
            raw = {name: raw_zip.read(name) for name in raw_zip.namelist()}
    exported = [table for category in json.loads(portal["data.json"])["categories"].values()
                for table in category["tables"]]  # fmt: skip

    for position, ((category, table), described) in enumerate(zip(data_map.tables(), exported, strict=True)):
        name = bench.raw_entry_name(position, category.key, table.model)
        rows = csv_data_rows(raw[f"{name}.csv"])
        assert rows == csv_data_rows(portal[described["file"]]) == described["row_count"], name
        assert len(raw[f"{name}.json"].splitlines()) == rows
    assert described_count(exported, "customers.Correspondence") == THREADS

    name = built.export_name
    bench.forget_export(built)
    assert not storages["default"].exists(name)
    assert not AccessRequest.objects.filter(pk=built.pk).exists()


def described_count(exported: list[dict[str, object]], model: str) -> object:
    return next(table["row_count"] for table in exported if table["name"] == model)


@pytest.mark.usefixtures("export_storage_dir")
def test_a_measurement_reports_time_size_and_peak_memory() -> None:
    customer_id = bench.seed_customer(correspondence=10, invoices=2, label="smoke")
    for kind in ("raw", "portal"):
        result = bench.measure(kind, customer_id)
        assert result["seconds"] > 0 and result["size"] > 0 and result["rss_mb"] > 10
