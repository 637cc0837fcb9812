"""Writing the ZIP: CSV entries and data.json streamed row batch by row batch, index.html and
manifest.json last, every file hashed while it is written; and the build's progress.

Memory stays flat whatever the customer's size: rows come `ROWS_PER_FETCH` at a time and go straight
into the ZIP entry; data.json is streamed to a temporary file (a ZIP has one entry open for writing
at a time, and each table goes to its CSV and to data.json at once) and copied in at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring as encode_json_string
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from access_requests.export import readable
from access_requests.export.readable import NestedTable, ReadableTable, Words
from access_requests.export.tables import (
    JSON_ENCODER,
    LANGUAGES,
    ROWS_PER_FETCH,
    Source,
    category_json,
    category_texts,
    csv_cell,
    csv_text,
    json_default,
    place_as_is,
    sources_for,
    table_json,
)
from access_requests.models import AccessRequest
from customers.models import Customer
from retention import data_map

# The compression of every entry; benchmarks/export.py measures the raw baseline at the same level.
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESSION_LEVEL = 6
# The HTML pages are the same markup over and over: the fastest level shrinks them nearly as well,
# at a third of the time (they hold the rows twice, once a language).
PAGE_COMPRESSION_LEVEL = 1
COPY_CHUNK_BYTES = 1024 * 1024
# Progress (and with it the heartbeat) is written at most this often: the customer's page sees it
# move, and a build of 100,000 rows writes a handful of rows (each UPDATE is a commit). The reaper
# waits 10 minutes for a heartbeat.
PROGRESS_SECONDS = 1.0
FORMAT_VERSION = 2
# Where a page of a table fills in its own rows and links (the rest is rendered once per table).
PAGE_ROWS_MARK = "\x00rows\x00"
PAGE_FIRST_MARK = "\x00first\x00"
PAGE_LAST_MARK = "\x00last\x00"
PAGE_NEIGHBOURS_MARK = "\x00neighbours\x00"
# The ids that remain in the export, and what each is: every other reference is a number a person
# knows (an invoice line names its invoice by invoice number).
SCHEMA_IDS = {
    "customer_id": "Our id for your customer account, as our staff and the audit trail name it.",
    "access_request.id": "The id of the request this copy answers.",
    "invoice_number, credited_invoice_number": "The invoice an invoice line or payment belongs to, "
    "or the invoice a credit note credits, by its invoice number.",
    "actor": "The id of the user who did what an audit event records: one of our employees, or you "
    "(your own sign-in). Ask us and we tell you who the employee is.",
    "object_type, object_id": "In the audit trail, the kind of record looked at or changed and its "
    "id (an invoice's id is not its number: ask us when you need to know which one it was).",
    "external_id": "The conversation's id at the processor that holds it (Zendesk's ticket number, "
    "or the e-mail's message id).",
}


class BuildStopped(Exception):
    """The request stopped being `building` while its export was built."""


class DigestWriter(io.RawIOBase):
    """Passes bytes on to `target`, counting them and hashing them on the way."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.target.write(data)
        self.sha256.update(data)
        written = memoryview(data).nbytes
        self.size += written
        return written


@dataclass(frozen=True)
class WrittenFile:
    name: str
    size: int
    sha256: str


class BuildProgress:
    """Progress (0-100) and heartbeat of one build, written as cheap conditional UPDATEs."""

    # Share of the bar: rows stream up to STREAMED, the rest is index, manifest and the upload.
    STREAMED = 90

    def __init__(self, *, access_request_id: Any, total_rows: int) -> None:
        self.access_request_id = access_request_id
        self.total_rows = max(total_rows, 1)
        self.rows_done = 0
        self.percent = 0
        self.beat_at = 0.0

    def advance(self, rows: int) -> None:
        self.rows_done += rows
        if time.monotonic() - self.beat_at >= PROGRESS_SECONDS:
            self.beat(min(self.STREAMED, 1 + self.STREAMED * self.rows_done // self.total_rows))

    def beat(self, percent: int) -> None:
        self.percent = max(self.percent, percent)
        still_building = AccessRequest.objects.filter(
            pk=self.access_request_id, status=AccessRequest.Status.BUILDING
        ).update(progress=self.percent, build_heartbeat_at=timezone.now())
        self.beat_at = time.monotonic()
        if not still_building:
            raise BuildStopped


class ExportWriter:
    def __init__(self, *, access_request: AccessRequest, customer: Customer, archive: IO[bytes]) -> None:
        self.access_request = access_request
        self.customer = customer
        self.archive = archive
        self.files: list[WrittenFile] = []
        self.generated_at = timezone.now()
        self.readable: dict[str, ReadableTable] = {}  # by CSV file: the table's rows as HTML
        self.nested_in: dict[str, str] = {}  # a nested table's CSV file -> its parent's

    def _zip_info(self, name: str, level: int = COMPRESSION_LEVEL) -> zipfile.ZipInfo:
        """An entry dated when the export was made, in Norwegian time (ZIP times have no zone), and
        readable by everyone who unpacks it (ZipFile.open would date it 1980 and make it 0600)."""
        made = timezone.localtime(self.generated_at)
        info = zipfile.ZipInfo(name, date_time=made.timetuple()[:6])
        info.compress_type = COMPRESSION
        info._compresslevel = level  # type: ignore[attr-defined]  # what ZipFile.open sets
        info.external_attr = 0o644 << 16
        return info

    @contextmanager
    def _entry(
        self, name: str, *, force_zip64: bool = True, level: int = COMPRESSION_LEVEL
    ) -> Iterator[DigestWriter]:
        # The size of a streamed entry is unknown when it starts; ZIP64 headers keep a huge one valid.
        with self.zip.open(self._zip_info(name, level), "w", force_zip64=force_zip64) as raw:
            digest = DigestWriter(raw)
            yield digest
        self.files.append(WrittenFile(name, digest.size, digest.sha256.hexdigest()))

    @contextmanager
    def _text_entry(
        self, name: str, *, force_zip64: bool = True, level: int = COMPRESSION_LEVEL
    ) -> Iterator[IO[str]]:
        with self._entry(name, force_zip64=force_zip64, level=level) as digest:
            buffered = io.BufferedWriter(digest, buffer_size=1 << 16)
            text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()
            buffered.detach()  # else its finaliser would close the entry's digest a second time

    def write(self) -> None:
        with zipfile.ZipFile(
            self.archive, "w", compression=COMPRESSION, compresslevel=COMPRESSION_LEVEL
        ) as self.zip:
            self._write_entries()

    def _write_entries(self) -> None:
        sources = sources_for(self.customer)
        texts = category_texts(sources)
        total_rows = sum(source.row_count or 0 for found in sources.values() for source in found)
        progress = BuildProgress(access_request_id=self.access_request.pk, total_rows=total_rows)
        progress.beat(1)
        with tempfile.TemporaryFile() as data_json, tempfile.TemporaryFile() as self.page_store:
            self._stream_tables(sources, texts, data_json, progress)
            data_json.seek(0, io.SEEK_END)
            size = data_json.tell()
            data_json.seek(0)
            # Its size is known now, so the entry gets ZIP64 headers only when it needs them.
            with self._entry("data.json", force_zip64=size * 1.05 > zipfile.ZIP64_LIMIT) as digest:
                shutil.copyfileobj(data_json, digest, COPY_CHUNK_BYTES)
            progress.beat(BuildProgress.STREAMED)
            self._write_index(sources, texts)
        self._write_manifest()

    def _stream_tables(
        self,
        sources: dict[str, list[Source]],
        texts: dict[str, dict[str, dict[str, Any]]],
        data_json: IO[bytes],
        progress: BuildProgress,
    ) -> None:
        """data.json, written piece by piece: its rows are never all in memory."""
        out = io.TextIOWrapper(data_json, encoding="utf-8", newline="")
        header = {
            "format": "wp-hosting-customer-data-export",
            "format_version": FORMAT_VERSION,
            "controller": settings.COMPANY_NAME,
            "generated_at": self.generated_at,
            "customer_id": self.customer.pk,
            "access_request": {
                "id": self.access_request.pk,
                "received_at": self.access_request.received_at,
                "due_on": self.access_request.due_on,
            },
            "languages": list(LANGUAGES),
            "conventions": "Times are ISO 8601 in UTC (ending in Z); dates are ISO 8601; amounts are "
            "strings of decimal digits, in NOK; texts are given in each language, keyed by language "
            "code; each table's rows are also in the CSV file it names. In the CSV files, a text "
            "starting with =, +, -, @, a tab or a carriage return has a ' in front, so that "
            "spreadsheet programs show it instead of running it as a formula.",
            "schema": {"ids": SCHEMA_IDS},
        }
        # Every object below is closed by hand: its last key ("tables", "rows") is still streaming.
        out.write(JSON_ENCODER.encode(header)[:-1] + ',\n"categories":{')
        words = Words.looked_up()
        for category_index, category in enumerate(data_map.categories()):
            nestings, children = readable.nestings(category)
            parents = {nesting.parent: nesting for nesting in nestings}
            table_sources = dict(zip(category.tables, sources[category.key], strict=False))
            for nesting in nestings:
                for child, _key in nesting.children:
                    self.nested_in[table_sources[child].path] = table_sources[nesting.parent].path
            out.write("," if category_index else "")
            out.write(f"\n{JSON_ENCODER.encode(category.key)}:")
            out.write(JSON_ENCODER.encode(category_json(category.key, texts))[:-1] + ',"tables":[')
            for table_index, source in enumerate(sources[category.key]):
                out.write("," if table_index else "")
                out.write(
                    "\n"
                    + JSON_ENCODER.encode(table_json(category.key, table_index, texts))[:-1]
                    + ',"rows":['
                )
                table = category.tables[table_index] if table_index < len(category.tables) else None
                shown: ReadableTable | None = None
                on_rows: Callable[[Sequence[Sequence[Any]]], None] | None = None
                if table not in children:
                    shown, on_rows = readable.stream_table(source, category.key, self.page_store, words)
                    if table in parents:
                        on_rows = None  # its rows are shown with the rows nested under them
                if source.json_as_is is None:  # a processor's table: its connector may page slowly
                    self._stream_rows(source, out, on_batch=progress.advance, on_rows=on_rows)
                else:
                    # One short transaction per table: its server-side cursor then streams. Outside
                    # one, Django declares it WITH HOLD, and PostgreSQL copies the whole result
                    # before the first row comes (three times the query's own time).
                    with transaction.atomic():
                        with connection.cursor() as cursor:
                            # The rows' HTML makes the query look costly enough for PostgreSQL to
                            # compile it first, which takes longer than running it (a second).
                            cursor.execute("SET LOCAL jit = off")
                        self._stream_rows(source, out, on_rows=on_rows)
                    progress.advance(source.rows_written)  # written outside it, so others see it
                if shown is not None:
                    if table in parents:
                        NestedTable(parents[table], shown, self.customer.pk, words, table_sources).render()
                    shown.flush()
                    self.readable[source.path] = shown
                    self._write_pages(shown)
                out.write(f'\n],"row_count":{source.rows_written}}}')
            out.write("]}")
        out.write("\n}}\n")
        out.flush()
        out.detach()

    def _stream_rows(
        self,
        source: Source,
        out: IO[str],
        *,
        on_batch: Callable[[int], None] | None = None,
        on_rows: Callable[[Sequence[Sequence[Any]]], None] | None = None,
    ) -> None:
        """The rows of one table, to its CSV, to data.json and to its HTML pages (`on_rows`),
        ROWS_PER_FETCH rows at a time: a write per row costs more than the row's own formatting."""
        encode = self._row_encoder(source)
        cells = self._csv_cells(source)
        buffer = io.StringIO()
        # A byte-order mark first, so spreadsheet programs read æ, ø and å as UTF-8.
        buffer.write("\ufeff")
        writer = csv.writer(buffer, lineterminator="\r\n")  # None is written as an empty cell
        writer.writerow(source.columns)
        separator = "\n"
        width = len(source.columns)
        with self._text_entry(source.path) as csv_file:
            for rows in itertools.batched(source.rows(), ROWS_PER_FETCH):
                # The values only; what index.html shows of them follows in the rows it gets.
                batch = [row[:width] for row in rows] if source.extra_sql else rows
                writer.writerows(map(cells, batch))
                csv_file.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
                out.write(separator + ",\n".join(map(encode, batch)))
                separator = ",\n"
                if on_rows is not None:
                    on_rows(rows)
                source.rows_written += len(batch)
                if on_batch is not None:
                    on_batch(len(batch))
            csv_file.write(buffer.getvalue())  # the header, when there were no rows

    @staticmethod
    def _csv_cells(source: Source) -> Callable[[Sequence[Any]], Iterable[Any]]:
        """A row's CSV cells: texts that a spreadsheet would run as a formula are escaped."""
        if source.json_as_is is None:
            return lambda row: [csv_cell(value) for value in row]
        text_columns = source.text_columns
        if not text_columns:
            return lambda row: row

        def cells(row: Sequence[Any]) -> Sequence[Any]:
            if not any(row[index] and csv_text(row[index]) is not row[index] for index in text_columns):
                return row
            escaped = list(row)
            for index in text_columns:
                if escaped[index]:
                    escaped[index] = csv_text(escaped[index])
            return escaped

        return cells

    def _write_pages(self, shown: ReadableTable) -> None:
        """The pages of a table that index.html does not hold, each a file of its own. The page
        around the rows is rendered once per language; each page fills in its rows and links."""
        shells: dict[str, str] = {}
        for name, language, page, index in readable.in_pages(shown):
            if language not in shells:
                context = self._page_context(shown, language, index, page)
                context.update(rows=mark_safe(PAGE_ROWS_MARK), first_row=PAGE_FIRST_MARK)  # noqa: S308
                context.update(last_row=PAGE_LAST_MARK)
                shells[language] = render_to_string(
                    "access_requests/export_page.html",
                    {
                        "company_name": settings.COMPANY_NAME,
                        "customer": self.customer,
                        "language": language,
                        "table": context,
                        "neighbours": mark_safe(PAGE_NEIGHBOURS_MARK),  # noqa: S308
                    },
                )
            last = page.first_row + page.rows - 1
            html = (
                shells[language]
                .replace(PAGE_FIRST_MARK, str(page.first_row))
                .replace(PAGE_LAST_MARK, str(last))
                .replace(PAGE_NEIGHBOURS_MARK, self._neighbours(shown, language, page.number))
                .replace(PAGE_ROWS_MARK, shown.body(page, index))
            )
            with self._text_entry(name, force_zip64=False, level=PAGE_COMPRESSION_LEVEL) as page_file:
                page_file.write(html)

    @staticmethod
    def _neighbours(shown: ReadableTable, language: str, number: int) -> str:
        """Links to the page before and the page after (the index lists every page)."""
        links = []
        with translation.override(language):
            for neighbour, arrow in ((number - 1, "←"), (number + 1, "→")):
                if not 1 <= neighbour <= len(shown.pages):
                    continue
                page = shown.pages[neighbour - 1]
                words = gettext("rows %(first)s–%(last)s") % {
                    "first": page.first_row,
                    "last": page.first_row + page.rows - 1,
                }
                href = (
                    f"../index.html#{language}-table-{shown.source.stem}"
                    if neighbour == 1
                    else shown.page_name(language, neighbour).removeprefix(readable.PAGES_FOLDER + "/")
                )
                text = f"{arrow} {escape(words)}" if arrow == "←" else f"{escape(words)} {arrow}"
                links.append(f'<a href="{href}">{text}</a>')
        return " ".join(links)

    def _page_context(
        self, shown: ReadableTable, language: str, index: int, page: readable.Page
    ) -> dict[str, Any]:
        with translation.override(language):
            description, _labels = shown.source.describe()
        return {
            "stem": shown.source.stem,
            "description": description,
            "row_count": shown.source.rows_written,
            "grouped": shown.grouped,
            "heading": mark_safe(shown.headings[index]),  # noqa: S308  # escaped by readable
            "rows": mark_safe(shown.body(page, index)),  # noqa: S308  # escaped by readable
            "first_row": page.first_row,
            "last_row": page.first_row + page.rows - 1,
            "number": page.number,
            "category_anchor": f"../index.html#{language}-{shown.category_key}",
        }

    @staticmethod
    def _page_links(shown: ReadableTable, language: str, *, current: int) -> list[dict[str, Any]]:
        """Links to every page of a table, from index.html (current 1) or from one of its pages."""
        return [
            {
                "number": page.number,
                "first_row": page.first_row,
                "last_row": page.first_row + page.rows - 1,
                "href": (
                    (
                        f"#{language}-table-{shown.source.stem}"
                        if current == 1
                        else f"../index.html#{language}-table-{shown.source.stem}"
                    )
                    if page.number == 1
                    else (
                        shown.page_name(language, page.number)
                        if current == 1
                        else shown.page_name(language, page.number).removeprefix(readable.PAGES_FOLDER + "/")
                    )
                ),
                "current": page.number == current,
            }
            for page in shown.pages
        ]

    @staticmethod
    def _row_encoder(source: Source) -> Callable[[Sequence[Any]], str]:
        """A row as a JSON object: each value's text placed as it is, or as a JSON string."""
        keys = [f"{encode_json_string(column)}:" for column in source.columns]
        if source.json_as_is is None:
            columns = source.columns
            return lambda row: JSON_ENCODER.encode(dict(zip(columns, row, strict=True)))
        placing = [
            (key, place_as_is if as_is else encode_json_string)
            for key, as_is in zip(keys, source.json_as_is, strict=True)
        ]

        def encode(row: Sequence[Any]) -> str:
            values = [
                key + ("null" if value is None else place(value))
                for (key, place), value in zip(placing, row, strict=True)
            ]
            return "{" + ",".join(values) + "}"

        return encode

    def _write_index(
        self, sources: dict[str, list[Source]], texts: dict[str, dict[str, dict[str, Any]]]
    ) -> None:
        counts = {source.path: source.rows_written for found in sources.values() for source in found}
        for index, language in enumerate(LANGUAGES):
            for category in texts[language].values():
                for table in category["tables"]:
                    table["row_count"] = counts[table["file"]]
                    parent = self.nested_in.get(table["file"])
                    table["nested_in"] = (
                        next(t for t in category["tables"] if t["file"] == parent) if parent else None
                    )
                    shown = self.readable.get(table["file"])
                    if shown is not None:
                        table["shown"] = self._page_context(shown, language, index, shown.pages[0])
                        table["pages"] = self._page_links(shown, language, current=1)
        html = render_to_string(
            "access_requests/export_index.html",
            {
                "company_name": settings.COMPANY_NAME,
                "customer": self.customer,
                "access_request": self.access_request,
                "generated_at": self.generated_at,
                "sections": [
                    {"language": language, "categories": list(texts[language].values())}
                    for language in LANGUAGES
                ],
                "files": [file.name for file in self.files],
            },
        )
        with self._text_entry("index.html", force_zip64=False, level=PAGE_COMPRESSION_LEVEL) as out:
            out.write(html)

    def _write_manifest(self) -> None:
        manifest = {
            "generated_at": self.generated_at,
            "customer_id": self.customer.pk,
            "access_request_id": self.access_request.pk,
            "algorithm": "sha256",
            "files": [{"name": file.name, "size": file.size, "sha256": file.sha256} for file in self.files],
        }
        with self._text_entry("manifest.json", force_zip64=False) as out:
            out.write(json.dumps(manifest, default=json_default, ensure_ascii=False, indent=2) + "\n")
