"""Alice reads her export in a browser: index.html and the pages it links show the same rows as
data.json, in Norwegian and in English, with her invoices' lines and payments under each invoice,
dates, times and amounts written as each language writes them, and a large table paged."""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from access_requests.export import export_build, readable
from access_requests.export.tables import sources_for
from customers.models import Customer
from tests.access_requests.conftest import new_request, read_export
from tests.factories import CorrespondenceFactory

pytestmark = pytest.mark.django_db

LANGUAGES = ("nb", "en")


class ShownRows(HTMLParser):
    """The rows of every table of an export page, by the CSV file (stem) the table shows: each row
    a list of its cells' texts. A row nested under another belongs to its own table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, list[list[str]]] = defaultdict(list)
        self.tables: list[dict[str, Any]] = []  # innermost last: stem, in thead?, current row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.tables.append({"stem": found.get("data-file"), "head": False, "row": None})
        elif not self.tables:
            return
        table = self.tables[-1]
        if tag == "thead":
            table["head"] = True
        elif tag == "tbody":
            table["head"] = False
        elif tag == "tr":
            table["row"] = None
            if table["stem"] and not table["head"] and found.get("class") != "nested":
                table["row"] = []
                self.rows[table["stem"]].append(table["row"])
        elif tag == "td" and table["row"] is not None:
            table["row"].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.tables:
            self.tables.pop()

    def handle_data(self, data: str) -> None:
        if self.tables and self.tables[-1]["row"] is not None and self.tables[-1]["row"]:
            self.tables[-1]["row"][-1] += data


def shown_rows(files: dict[str, bytes], language: str) -> dict[str, list[list[str]]]:
    """Every table's rows as shown in `language`: index.html's section and the pages of that language."""
    index = files["index.html"].decode()
    norwegian, english = index.split('<section class="language" id="en"')
    parts = [norwegian if language == "nb" else english]
    parts += [
        content.decode()
        for name, content in files.items()
        if re.fullmatch(rf"pages/.*\.{language}\.html", name)
    ]
    rows: dict[str, list[list[str]]] = defaultdict(list)
    for part in parts:
        parser = ShownRows()
        parser.feed(part)
        for stem, found in parser.rows.items():
            rows[stem].extend(found)
    return rows


@pytest.fixture
def alices_files(
    alice_with_everything: Customer, export_storage_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, bytes]:
    monkeypatch.setattr(readable, "PAGE_ROWS", 3)  # her 7 conversations fill three pages
    for number in range(5):
        CorrespondenceFactory.create(customer=alice_with_everything, subject=f"Spørsmål nummer {number}")
    built = export_build(access_request=new_request(alice_with_everything))
    assert built is not None
    return read_export(built)


def test_the_pages_show_the_rows_of_data_json_in_both_languages(alices_files: dict[str, bytes]) -> None:
    data = json.loads(alices_files["data.json"])
    for language in LANGUAGES:
        shown = shown_rows(alices_files, language)
        for category in data["categories"].values():
            for table in category["tables"]:
                stem = table["file"].removesuffix(".csv")
                assert len(shown[stem]) == table["row_count"], (language, stem)
                names = [column["name"] for column in table["columns"]]
                texts = {column["name"] for column in table["columns"] if column["kind"] == "text"}
                for row, cells in zip(table["rows"], shown[stem], strict=True):
                    if len(cells) != len(names):
                        continue  # nested under another row, without the column naming it
                    # Each text is shown as it is (the other values as the language writes them).
                    for name, value in row.items():
                        if name in texts and value is not None:
                            assert cells[names.index(name)] == value, (language, stem, name)


def test_invoices_show_their_lines_and_payments_and_amounts_as_each_language_writes_them(
    alices_files: dict[str, bytes],
) -> None:
    index = alices_files["index.html"].decode()
    norwegian, english = index.split('<section class="language" id="en"')
    invoice = re.search(r'<tbody><tr id="nb-invoice-(\d+)">(.*?)</tbody>', norwegian, re.S)
    assert invoice is not None
    number, block = invoice.groups()
    assert "Managed WordPress, mars" in block and "311,25" in block and "31.03.2025" in block
    [english_block] = re.findall(rf'<tbody><tr id="en-invoice-{number}">(.*?)</tbody>', english, re.S)
    assert "Managed WordPress, mars" in english_block
    assert "311.25" in english_block and "31 Mar 2025" in english_block
    # Times are Norwegian time: the message sent 10:00 in summer time.
    assert "01.05.2025 10:00" in norwegian and "1 May 2025, 10:00" in english


def test_a_large_table_pages_into_files_linked_from_the_index(alices_files: dict[str, bytes]) -> None:
    index = alices_files["index.html"].decode()
    pages = sorted(name for name in alices_files if name.startswith("pages/"))
    assert pages == sorted(
        f"pages/correspondence-{n}.{language}.html" for n in (2, 3) for language in LANGUAGES
    )
    for name in pages:
        assert f'href="{name}"' in index
        page = alices_files[name].decode()
        assert '<a href="../index.html#' in page
        for resource in ("<script", "<link", "<img", "src=", "url(", "@import"):
            assert resource not in page.lower(), f"{name} loads a resource: {resource}"
        for href in re.findall(r'href="([^"#]*)', page):
            assert (
                href == ""
                or href.startswith("https://")
                or href == "../index.html"
                or (f"pages/{href}" in alices_files)
            ), (name, href)


def test_html_escapes_what_the_customer_wrote(alice: Customer, export_storage_dir: Path) -> None:
    CorrespondenceFactory.create(customer=alice, subject='<script>alert("x")</script>')
    index = read_export(export_build(access_request=new_request(alice)))["index.html"].decode()  # type: ignore[arg-type]
    assert "<script>" not in index
    assert "&lt;script&gt;" in index


def test_times_are_norwegian_time_in_both_languages() -> None:
    summer = datetime(2025, 7, 1, 10, 30, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert readable.datetime_texts(summer) == ("01.07.2025 12:30", "1 Jul 2025, 12:30")
    assert readable.amount_texts("-1234567.5") == ("−1\u00a0234\u00a0567,50", "−1,234,567.50")
    assert readable.date_texts("2026-03-12") == ("12.03.2026", "12 Mar 2026")


def test_times_the_database_writes_read_as_the_python_twin_writes_them(
    alices_files: dict[str, bytes],
) -> None:
    """Times in the streamed tables are written by PostgreSQL (tables.local_time_sql), nested ones
    by Python (readable.datetime_texts): a person sees one format."""
    data = json.loads(alices_files["data.json"])
    rows = data["categories"]["correspondence"]["tables"][0]["rows"]
    for index, language in enumerate(LANGUAGES):
        shown = shown_rows(alices_files, language)["correspondence"]
        names = [column["name"] for column in data["categories"]["correspondence"]["tables"][0]["columns"]]
        for row, cells in zip(rows, shown, strict=True):
            for name in ("opened_at", "last_message_at"):
                assert cells[names.index(name)] == readable.datetime_texts(row[name])[index]


@pytest.mark.parametrize(
    "utc",
    [
        "2025-03-30T00:59:59.000000Z",
        "2025-03-30T01:00:00.000000Z",
        "2025-10-26T00:30:00+00:00",
        "2025-12-31T23:10:00.000000Z",
        "2025-06-30T22:00:00.000000Z",
        "2024-02-28T23:30:00Z",
    ],
)
def test_the_quick_way_to_norwegian_time_agrees_with_the_time_zone(utc: str) -> None:
    """Across the changes to and from summer time and midnight, as Python's time zone says."""
    moment = readable.local_time(utc)
    assert readable.datetime_texts(utc) == (
        f"{moment:%d.%m.%Y %H:%M}",
        f"{moment.day} {moment:%b %Y, %H:%M}",
    )


def test_the_rows_postgresql_writes_are_the_rows_python_writes(
    alice_with_everything: Customer, settings: Any
) -> None:
    """Each streamed row's HTML comes from the database (readable.row_html_sql); Python's twin of
    every cell (readable.cell_renderer) is the oracle, message lists, choices and amounts included."""
    CorrespondenceFactory.create(
        customer=alice_with_everything,
        subject="<b>Fet</b> & «sitat»",
        messages=[
            {"sent_at": "2025-02-30T10:00:00Z", "sender": "kunde", "body": "Ugyldig dato"},
            {"sent_at": "2025-13-01T25:00:00+16:00", "sender": "kunde", "body": "Ugyldig måned"},
            {"sent_at": "2025-01-01T25:00:00Z", "sender": "kunde", "body": "Ugyldig time"},
            {"sent_at": "i går", "sender": "kunde", "body": "Ingen tid"},
            {"sent_at": "", "sender": None, "body": "Uten tid"},
            {"sent_at": "2025-12-31T23:30:00Z", "sender": "<support>", "body": "Nyttår"},
        ],
    )
    words = readable.Words.looked_up()
    compared = 0
    for found in sources_for(alice_with_everything).values():
        for source in found:
            if not source.database_columns:
                continue
            _table, _add = readable.stream_table(source, "any", io.BytesIO(), words)
            width = len(source.columns)
            python = readable.RowRenderer(readable.source_renderers(source, words))
            for row in source.rows():
                assert row[width] is not None, (source.name, row)  # written by the database
                assert list(row[width:]) == python.rows(row[:width]), source.name
                compared += 1
    assert compared > 10
