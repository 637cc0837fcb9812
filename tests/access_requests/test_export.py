"""Alice's export: complete (every category of the data map, every row), faithful (CSV and data.json
equal the database, checksums match), hers alone (nothing of Bob's), readable offline in Norwegian
and English, and announced by an e-mail that links to the portal and holds no data."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail
from django.core.files.storage import storages
from django.utils import timezone

from access_requests import export
from access_requests.export import archive, export_build
from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import Customer, Invoice
from processors.base import ExternalTable
from retention import data_map
from tests.access_requests.conftest import BOB_SECRETS, new_request, read_export
from tests.factories import CorrespondenceFactory
from tests.fixtures_s3 import S3_REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_export(
    alice_with_everything: Customer,
    bob_with_secrets: Customer,
    export_storage_dir: Path,
    django_capture_on_commit_callbacks: Any,
) -> AccessRequest:
    access_request = new_request(alice_with_everything)
    with django_capture_on_commit_callbacks(execute=True):
        built = export_build(access_request=access_request)
    assert built is not None
    return built


@pytest.fixture
def files(alices_export: AccessRequest) -> dict[str, bytes]:
    return read_export(alices_export)


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def as_written(value: Any) -> Any:
    """How the export writes a database value, told independently of it: JSON values, numbers and
    booleans as themselves, times in UTC ISO 8601, dates ISO, amounts with all their digits."""
    if value is None or isinstance(value, bool | int | float | dict | list):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_matches(cell: str, value: Any) -> bool:
    written = as_written(value)
    if isinstance(written, dict | list):
        return json.loads(cell) == written
    if isinstance(written, bool):
        return cell == ("true" if written else "false")
    return cell == ("" if written is None else str(written))


def exported_columns(table: data_map.Table) -> list[tuple[str, str]]:
    """(column name, ORM lookup) of each column the export writes for a data-map table: a foreign
    key to an invoice is written as the invoice's number, the reference a person can follow."""
    columns = []
    for name in table.fields:
        field = table.model_class._meta.get_field(name)
        if field.is_relation and field.related_model is Invoice:
            columns.append((f"{name}_number", f"{name}__number"))
        else:
            columns.append((name, name))
    return columns


def csv_escaped(cell: str) -> str:
    """A CSV text cell as the database holds it: the quote that stops a formula taken off."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell


def test_every_data_map_category_is_in_data_json_and_index_html(files: dict[str, bytes]) -> None:
    data = json.loads(files["data.json"])
    index = files["index.html"].decode()
    for category in data_map.categories():
        assert category.key in data["categories"], f"category {category.key} is missing from data.json"
        for language in ("nb", "en"):
            assert f'id="{language}-{category.key}"' in index, (
                f"{category.key} missing from index ({language})"
            )
    assert list(data["categories"]) == [category.key for category in data_map.categories()]


def test_every_table_of_the_data_map_has_its_csv_and_its_rows_in_data_json(
    files: dict[str, bytes], alice_with_everything: Customer, alices_export: AccessRequest
) -> None:
    data = json.loads(files["data.json"])
    for category in data_map.categories():
        exported = data["categories"][category.key]["tables"]
        assert [table["name"] for table in exported] == [table.model for table in category.tables]
        for table, described in zip(category.tables, exported, strict=True):
            queryset = table.rows_for_customer(alice_with_everything.pk)
            if table.model == "access_requests.AccessRequest":
                # The request being answered is in its own export as it was then: being prepared.
                AccessRequest.objects.filter(pk=alices_export.pk).update(
                    status=AccessRequest.Status.BUILDING, ready_at=None, expires_at=None
                )
            columns = exported_columns(table)
            rows = list(queryset.values_list(*(lookup for _name, lookup in columns)))
            assert described["row_count"] == len(rows)
            written = [
                {name: as_written(value) for (name, _lookup), value in zip(columns, row, strict=True)}
                for row in rows
            ]
            assert described["rows"] == written, table.model
            in_csv = csv_rows(files[described["file"]])
            assert in_csv[0] == [name for name, _lookup in columns]
            assert len(in_csv) == len(rows) + 1
            for cells, row in zip(in_csv[1:], rows, strict=True):
                matches = [
                    csv_matches(csv_escaped(cell), value) for cell, value in zip(cells, row, strict=True)
                ]
                assert all(matches), (table.model, cells, row)


def test_alice_has_rows_in_the_tables_she_fills(files: dict[str, bytes]) -> None:
    data = json.loads(files["data.json"])
    counts = {
        table["name"]: table["row_count"]
        for category in data["categories"].values()
        for table in category["tables"]
    }
    assert counts["customers.Customer"] == 1
    assert counts["customers.Invoice"] == 2
    assert counts["customers.Payment"] == 2
    assert counts["customers.Correspondence"] == 2
    assert counts["retention.LegalHold"] == 1
    assert counts["access_requests.AccessRequest"] == 1
    assert counts["audit.AuditEvent"] >= 1


def test_values_survive_the_round_trip(files: dict[str, bytes], alice_with_everything: Customer) -> None:
    data = json.loads(files["data.json"])
    correspondence = data["categories"]["correspondence"]["tables"][0]["rows"]
    assert {"sent_at": "2025-05-01T10:00:00+02:00", "sender": "support", "body": "Løst 🎉, «sitat»"} in [
        message for row in correspondence for message in row["messages"]
    ]
    invoice = data["categories"]["invoices"]["tables"][0]["rows"][0]
    assert invoice["total_amount"] == "311.25"  # 249.00 + 25 % VAT, digits kept as a string
    assert invoice["issued_on"] == "2025-03-31"
    customer_csv = csv_rows(files["customers.csv"])
    assert dict(zip(*customer_csv, strict=True))["name"] == "Alice Hansen"


def test_categories_without_tables_say_where_their_data_is(files: dict[str, bytes]) -> None:
    data = json.loads(files["data.json"])
    for category in data_map.categories():
        exported = data["categories"][category.key]
        assert exported["retention"]["en"] and exported["processors"]
        if category.tables:
            assert exported["note"] is None
        else:  # e.g. server logs: kept by IP address, not linked to the account
            assert exported["tables"] == []
            assert exported["note"]["en"] and exported["note"]["nb"]


def test_manifest_checksums_match_every_file(files: dict[str, bytes], alices_export: AccessRequest) -> None:
    manifest = json.loads(files["manifest.json"])
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for name, entry in listed.items():
        assert entry["size"] == len(files[name])
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()
    assert manifest["access_request_id"] == str(alices_export.pk)
    assert manifest["customer_id"] == alices_export.customer_id


def test_nothing_of_bobs_is_in_alices_export(files: dict[str, bytes]) -> None:
    for name, content in files.items():
        text = content.decode("utf-8-sig")
        for secret in BOB_SECRETS:
            assert secret not in text, f"{secret!r} from Bob's data is in {name} of Alice's export"


def test_index_html_is_self_contained_in_norwegian_and_english(files: dict[str, bytes]) -> None:
    index = files["index.html"].decode()
    for resource in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "src=", "url(", "@import"):
        assert resource not in index.lower(), f"index.html loads a resource: {resource}"
    for href in re.findall(r'href="([^"]*)"', index):
        assert href.startswith(("#", "https://")) or href in files, f"index.html links to {href}"
    norwegian, english = index.split('<section class="language" id="en"')
    assert '<section class="language" id="nb" lang="nb">' in norwegian
    assert "Fakturanummer" in norwegian  # a column label in Norwegian
    assert "Invoice number" in english
    assert "Alice Hansen" in norwegian and "Alice Hansen" in english


def test_index_html_counts_rows_and_links_each_csv(files: dict[str, bytes]) -> None:
    index = files["index.html"].decode()
    data = json.loads(files["data.json"])
    for category in data["categories"].values():
        for table in category["tables"]:
            assert index.count(f'href="{table["file"]}"') == 2  # once per language


def test_the_request_is_ready_for_seven_days_with_its_file_described(
    alices_export: AccessRequest, files: dict[str, bytes]
) -> None:
    assert alices_export.status == AccessRequest.Status.READY
    assert alices_export.progress == 100
    assert alices_export.build_attempts == 1
    assert alices_export.ready_at is not None
    assert alices_export.expires_at == alices_export.ready_at + timedelta(days=7)
    stored = storages["default"].open(alices_export.export_name).read()
    assert alices_export.export_size == len(stored)
    assert alices_export.export_sha256 == hashlib.sha256(stored).hexdigest()


def test_the_stored_name_cannot_be_guessed_from_the_request_id(alices_export: AccessRequest) -> None:
    name = alices_export.export_name
    assert name.startswith(f"exports/{alices_export.pk}-")
    assert len(name.removeprefix(f"exports/{alices_export.pk}-").removesuffix(".zip")) >= 32


def test_the_ready_email_links_to_the_portal_and_holds_no_data(
    alices_export: AccessRequest, settings: Any
) -> None:
    [message] = [m for m in mail.outbox if "ready" in m.subject]
    assert message.to == ["alice@example.no"]
    page = f"{settings.PORTAL_BASE_URL}{alices_export.get_absolute_url()}"
    html = message.alternatives[0][0]
    assert page in message.body and page in str(html)
    assert not message.attachments
    for data in ("+47 91234567", "Hjelp med e-post", "Tvist om faktura", alices_export.export_name, ".zip"):
        assert data not in message.body and data not in str(html)


def test_progress_is_written_as_the_rows_stream(
    alice_with_everything: Customer, export_storage_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "PROGRESS_SECONDS", 0)
    seen: list[int] = []
    original = export.BuildProgress.beat

    def beat(self: Any, percent: int) -> None:
        original(self, percent)
        seen.append(AccessRequest.objects.get(pk=self.access_request_id).progress)

    monkeypatch.setattr(export.BuildProgress, "beat", beat)
    access_request = export_build(access_request=new_request(alice_with_everything))
    assert access_request is not None and access_request.progress == 100
    assert len(seen) > 5
    assert seen == sorted(seen) and seen[-1] == 90


def test_a_request_that_leaves_building_stops_the_build_and_leaves_no_file(
    alice_with_everything: Customer, export_storage_dir: Path, processor_tables: Any
) -> None:
    access_request = new_request(alice_with_everything)

    def tickets(customer: Customer) -> ExternalTable:
        # While the build streams, the reaper takes the build back (as if this worker had stalled).
        def rows() -> Any:
            AccessRequest.objects.filter(pk=access_request.pk).update(status=AccessRequest.Status.RECEIVED)
            yield ("1", "Takk")

        return ExternalTable(name="zendesk.Ticket", columns=("id", "subject"), rows=rows())

    processor_tables("correspondence", tickets)
    assert export_build(access_request=access_request) is None
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.RECEIVED
    assert access_request.export_name == ""
    assert not any(export_storage_dir.rglob("*.zip"))


def test_a_request_no_longer_waiting_is_not_built(alice: Customer, export_storage_dir: Path) -> None:
    rejected = new_request(alice, status=AccessRequest.Status.REJECTED, rejection_reason="Ikke identifisert")
    assert export_build(access_request=rejected) is None
    rejected.refresh_from_db()
    assert rejected.status == AccessRequest.Status.REJECTED
    assert rejected.build_attempts == 0


def test_processor_tables_join_their_category(
    alice: Customer, export_storage_dir: Path, processor_tables: Any
) -> None:
    def tickets(customer: Customer) -> ExternalTable:
        return ExternalTable(
            name="zendesk.Ticket",
            columns=("id", "subject"),
            rows=iter([(501, f"Billett for {customer.name}"), (502, None)]),
            description="Zendesk tickets",
        )

    processor_tables("correspondence", tickets)
    files = read_export(export_build(access_request=new_request(alice)))  # type: ignore[arg-type]
    data = json.loads(files["data.json"])
    zendesk = data["categories"]["correspondence"]["tables"][-1]
    assert zendesk["rows"] == [
        {"id": 501, "subject": "Billett for Alice Hansen"},
        {"id": 502, "subject": None},
    ]
    assert csv_rows(files["zendesk-ticket.csv"]) == [
        ["id", "subject"],
        ["501", "Billett for Alice Hansen"],
        ["502", ""],
    ]


def test_a_customer_with_little_data_still_gets_every_category(
    bob: Customer, export_storage_dir: Path
) -> None:
    files = read_export(export_build(access_request=new_request(bob)))  # type: ignore[arg-type]
    data = json.loads(files["data.json"])
    assert set(data["categories"]) == {category.key for category in data_map.categories()}
    assert csv_rows(files["correspondence.csv"]) == [
        list(data_map.category("correspondence").tables[0].fields)
    ]


@pytest.fixture
def export_bucket(s3: S3Client, s3_endpoint: str, settings: Any) -> str:
    bucket = f"portal-exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_endpoint,
                "region_name": S3_REGION,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
                "object_parameters": {"ServerSideEncryption": "AES256", "CacheControl": "no-store"},
            },
        },
    }
    return bucket


def test_the_export_goes_to_s3_encrypted_at_rest(
    alice_with_everything: Customer, export_bucket: str, s3: S3Client
) -> None:
    built = export_build(access_request=new_request(alice_with_everything))
    assert built is not None
    head = s3.head_object(Bucket=export_bucket, Key=built.export_name)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["CacheControl"] == "no-store"
    assert head["ContentLength"] == built.export_size
    files = read_export(built)
    assert json.loads(files["manifest.json"])["access_request_id"] == str(built.pk)


def test_lines_payments_and_credit_notes_name_their_invoice_by_number(
    alice_with_everything: Customer, export_storage_dir: Path
) -> None:
    first = Invoice.objects.filter(customer=alice_with_everything).order_by("number").first()
    assert first is not None and first.number is not None
    credit_note = customer_services.credit_note_create(invoice=first, issued_on=date(2025, 6, 2))
    files = read_export(export_build(access_request=new_request(alice_with_everything)))  # type: ignore[arg-type]
    invoices = {
        table["name"]: table for table in json.loads(files["data.json"])["categories"]["invoices"]["tables"]
    }
    number = str(first.number)
    assert {"invoice_number": first.number, "description": "Managed WordPress, mars"}.items() <= invoices[
        "customers.InvoiceLine"
    ]["rows"][0].items()
    assert [row["invoice_number"] for row in invoices["customers.Payment"]["rows"]].count(first.number) == 1
    [credit] = [row for row in invoices["customers.Invoice"]["rows"] if row["number"] == credit_note.number]
    assert credit["credited_invoice_number"] == first.number
    # The CSVs say the same; no invoice id is left for a person to look up.
    lines = csv_rows(files["invoice-lines.csv"])
    assert lines[0][0] == "invoice_number" and lines[1][0] == number
    assert csv_rows(files["payments.csv"])[0][0] == "invoice_number"
    assert "credited_invoice_number" in csv_rows(files["invoices.csv"])[0]
    # The ids that remain are explained.
    ids = json.loads(files["data.json"])["schema"]["ids"]
    assert {"customer_id", "access_request.id", "actor", "object_type, object_id"} <= set(ids)
    # index.html nests the credit note's link to the invoice it credits.
    index = files["index.html"].decode()
    assert f'<a href="#nb-invoice-{number}">{number}</a>' in index
    assert f'<a href="#en-invoice-{number}">{number}</a>' in index


def test_how_staff_verified_her_identity_and_who_looked_are_in_her_export(
    alice: Customer, export_storage_dir: Path, support_user: Any
) -> None:
    access_request = new_request(
        alice, channel=AccessRequest.Channel.PHONE, identity_verification="Ringte fra registrert nummer"
    )
    AuditEvent.record(AuditEvent.Kind.CUSTOMER_VIEWED, actor=support_user, customer_id=alice.pk, target=alice)
    data = json.loads(read_export(export_build(access_request=access_request))["data.json"])  # type: ignore[arg-type]
    [request_row] = data["categories"]["access_request_exports"]["tables"][0]["rows"]
    assert request_row["identity_verification"] == "Ringte fra registrert nummer"
    events = data["categories"]["sessions_and_audit"]["tables"][0]["rows"]
    assert support_user.pk in [event["actor"] for event in events]


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(
    alice: Customer, export_storage_dir: Path
) -> None:
    formulas = ['=HYPERLINK("https://evil.example")', "+47 91234567", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
    for text in formulas:
        CorrespondenceFactory.create(customer=alice, subject=text)
    files = read_export(export_build(access_request=new_request(alice)))  # type: ignore[arg-type]
    rows = csv_rows(files["correspondence.csv"])
    subjects = [dict(zip(rows[0], row, strict=True))["subject"] for row in rows[1:]]
    assert sorted(subjects) == sorted("'" + text for text in formulas)
    # data.json is no spreadsheet: it keeps the texts as they are.
    data = json.loads(files["data.json"])
    assert sorted(
        row["subject"] for row in data["categories"]["correspondence"]["tables"][0]["rows"]
    ) == sorted(formulas)


def test_processor_cells_are_escaped_and_numbers_are_not() -> None:
    assert export.csv_cell("=1+1") == "'=1+1"
    assert export.csv_cell("Hei") == "Hei"
    assert export.csv_cell(-5) == "-5"
    assert export.csv_cell(Decimal("-311.25")) == "-311.25"


def test_every_file_in_the_zip_is_dated_when_the_export_was_made(
    alices_export: AccessRequest,
) -> None:
    with storages["default"].open(alices_export.export_name, "rb") as stored:
        archive = zipfile.ZipFile(io.BytesIO(stored.read()))
    made = timezone.localtime(alices_export.ready_at)
    for info in archive.infolist():
        when = datetime(*info.date_time, tzinfo=made.tzinfo)
        assert timedelta(0) <= made.replace(microsecond=0) - when <= timedelta(minutes=1), info.filename
        assert info.external_attr >> 16 == 0o644


def test_file_names_say_what_is_in_them(files: dict[str, bytes]) -> None:
    for name in ("customers.csv", "contacts.csv", "users.csv", "invoices.csv", "invoice-lines.csv"):
        assert name in files
    assert {"payments.csv", "correspondence.csv", "legal-holds.csv", "audit-events.csv"} <= set(files)
    assert not [
        name for name in files if "." in name.removesuffix(".csv").removesuffix(".json").removesuffix(".html")
    ]
