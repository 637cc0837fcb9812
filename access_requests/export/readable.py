"""The customer's data as a person reads it: the rows of every table in index.html and the pages it
links to, in Norwegian and English, with dates, times and amounts written the way each language
writes them.

Invariants:
- Every row in data.json is on exactly one page of each language, and nothing else is: the HTML is
  rendered from the rows the archive streams, or, for a table whose rows nest under another's (an
  invoice's lines and payments, a contact's sign-in), from the same `Table.rows_for_customer`
  queryset, narrowed to the parent rows of one page.
- Memory stays flat: a page holds at most `PAGE_ROWS` rows (of the table that is paged, with the
  rows nested under them); pages go to a temporary file as they fill and are copied into the ZIP
  when the table is done (the ZIP has one entry open for writing at a time). index.html inlines
  each table's first page only and links the rest.
- Self-contained: inline CSS, no scripts, no resources from anywhere; every value is escaped.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import Count, Expression, F, Func, OuterRef, Subquery
from django.utils import translation
from django.utils.translation import gettext as _

from access_requests.export.tables import (
    LANGUAGES,
    REFERENCED_BY,
    Column,
    Source,
    columns_of,
    csv_cell,
)
from retention import data_map

# Rows on one HTML page: a browser shows a page of 500 rows at once, where one of 100,000 would hang.
PAGE_ROWS = 500
PAGES_FOLDER = "pages"
EMPTY = "–"

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def escape(text: str) -> str:
    # Most texts hold nothing to escape; looking is cheaper than three replacements.
    if "<" in text or "&" in text or ">" in text:
        return html.escape(text, quote=False)
    return text


# --- Values as a person reads them, per language -----------------------------------------------------
#
# The values come as the texts the database wrote (tables.as_text_sql): formatting works on those
# texts, with slicing where it can, since a page of 100,000 rows is formatted twice (once a language).


# The formatting below writes the two languages of the export, in this order.
assert LANGUAGES == ("nb", "en"), "teach datetime_texts, date_texts and amount_texts the new language"


def local_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(ZoneInfo(settings.TIME_ZONE))


# Norway's offset from UTC by the UTC hour ("2025-03-31T10"): the same for every time in that hour,
# so a table of 100,000 times asks the time zone a few hundred times, not 100,000.
_OFFSETS: dict[str, timedelta] = {}


def datetime_texts(text: str) -> tuple[str, ...]:
    """A time as Norwegian time: "31.03.2025 12:00" (nb), "31 Mar 2025, 12:00" (en)."""
    if text.endswith(("Z", "+00:00")) and len(text) >= 16 and text[10] == "T":
        utc_hour = text[:13]
        offset = _OFFSETS.get(utc_hour)
        if offset is None:
            offset = _OFFSETS[utc_hour] = local_time(utc_hour + ":00:00+00:00").utcoffset() or timedelta(0)
        hour = int(text[11:13]) + offset.seconds // 3600
        if hour < 24 and offset >= timedelta(0) and not offset.seconds % 3600:  # the same day as in UTC
            year, month, day, clock = text[:4], text[5:7], text[8:10], f"{hour:02}:{text[14:16]}"
            return f"{day}.{month}.{year} {clock}", f"{int(day)} {MONTHS_EN[int(month) - 1]} {year}, {clock}"
    moment = local_time(text)
    day_, month_, clock = moment.day, moment.month, f"{moment.hour:02}:{moment.minute:02}"
    return (
        f"{day_:02}.{month_:02}.{moment.year} {clock}",
        f"{day_} {MONTHS_EN[month_ - 1]} {moment.year}, {clock}",
    )


def date_texts(text: str) -> tuple[str, ...]:
    year, month, day = text[:4], text[5:7], text[8:10]
    return f"{day}.{month}.{year}", f"{int(day)} {MONTHS_EN[int(month) - 1]} {year}"


def amount_texts(text: str) -> tuple[str, ...]:
    sign, digits = ("−", text[1:]) if text.startswith("-") else ("", text)
    whole, _point, fraction = digits.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    fraction = (fraction + "00")[:2] if fraction else "00"
    return f"{sign}{'\u00a0'.join(groups)},{fraction}", f"{sign}{','.join(groups)}.{fraction}"


@dataclass(frozen=True)
class Words:
    """The few words the pages need, in each language, looked up once."""

    yes: tuple[str, ...]
    no: tuple[str, ...]

    @classmethod
    def looked_up(cls) -> Words:
        yes, no = [], []
        for language in LANGUAGES:
            with translation.override(language):
                yes.append(_("Yes"))
                no.append(_("No"))
        return cls(tuple(yes), tuple(no))


Cell = str | tuple[str, ...]  # one text for every language, or one per language
LANGUAGES_AT = range(len(LANGUAGES))


def cell_renderer(
    kind: str, choices: dict[str, tuple[str, ...]] | None, words: Words
) -> Callable[[Any], Cell]:
    """A column's value (the database's text) as HTML, per language."""
    if kind == "datetime":
        return datetime_texts
    if kind == "date":
        return date_texts
    if kind == "amount":
        return amount_texts
    if kind == "boolean":
        return lambda text: words.yes if text == "true" else words.no
    if kind == "json":
        return json_cell
    if kind == "choice" and choices:
        return lambda text: choices.get(text) or escape(text)
    return escape


def json_cell(text: str) -> Cell:
    value = json.loads(text)
    if isinstance(value, list) and all(isinstance(item, dict) and "body" in item for item in value):
        return messages_cell(value)
    return f"<code>{escape(json.dumps(value, ensure_ascii=False))}</code>" if value not in ("", None) else ""


def message_time_texts(sent: Any) -> tuple[str, ...]:
    """When a message was sent, as `datetime_texts` writes it; a text that is no time as it is."""
    if sent.__class__ is not str or not sent:
        return ("",) * len(LANGUAGES)
    if re.fullmatch(VALID_TIME_PATTERN, sent):
        try:
            return datetime_texts(local_time(sent).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        except ValueError:  # a day the month does not have
            pass
    return (escape(sent),) * len(LANGUAGES)


def messages_cell(messages: list[dict[str, Any]]) -> tuple[str, ...]:
    """A conversation's messages, each with when it was sent and by whom."""
    norwegian, english = [], []
    for message in messages:
        when_nb, when_en = message_time_texts(message.get("sent_at"))
        sender, body = escape(str(message.get("sender") or "")), escape(str(message.get("body") or ""))
        rest = f' · {sender}</span><div class="body">{body}</div>'
        norwegian.append('<li><span class="meta">' + when_nb + rest)
        english.append('<li><span class="meta">' + when_en + rest)
    return f'<ol class="messages">{"".join(norwegian)}</ol>', f'<ol class="messages">{"".join(english)}</ol>'


class RowRenderer:
    """A row of texts as one `<tr>` per language."""

    def __init__(self, renderers: Sequence[Callable[[Any], Cell]], *, html_at: int | None = None) -> None:
        self.renderers = renderers
        # Where the database put the row as HTML, one text per language (`row_html_sql`), if it did.
        self.html_at = html_at

    def _cells(self, row: Sequence[Any]) -> list[Cell]:
        return [
            (EMPTY if value is None else "") if not value else render(value)
            for render, value in zip(self.renderers, row, strict=False)
        ]

    def cells(self, row: Sequence[Any]) -> list[list[str]]:
        """Each language's cells: a text the same in every language, or its own in each."""
        cells = self._cells(row)
        return [[cell if cell.__class__ is str else cell[index] for cell in cells] for index in LANGUAGES_AT]

    def rows(self, row: Sequence[Any]) -> list[str]:
        """The row as a table row in each language."""
        if self.html_at is not None and row[self.html_at] is not None:
            return list(row[self.html_at : self.html_at + len(LANGUAGES)])
        cells = self._cells(row)
        return [
            "<tr><td>" + "<td>".join([cell if cell.__class__ is str else cell[index] for cell in cells])
            for index in LANGUAGES_AT
        ]


def renderers_for(columns: Sequence[Column], words: Words) -> list[Callable[[Any], Cell]]:
    choices: list[dict[str, tuple[str, ...]] | None] = []
    for column in columns:
        if column.kind != "choice":
            choices.append(None)
            continue
        labels: dict[str, list[str]] = defaultdict(list)
        for language in LANGUAGES:
            with translation.override(language):
                for value, label in column.choices.items():
                    labels[value].append(escape(label))
        choices.append({value: tuple(texts) for value, texts in labels.items()})
    return [
        cell_renderer(column.kind, choice, words) for column, choice in zip(columns, choices, strict=True)
    ]


def source_renderers(source: Source, words: Words) -> list[Callable[[Any], Cell]]:
    if source.json_as_is is None:  # a processor's values: made texts first (`stream_table`)
        return [escape] * len(source.columns)
    per_language = [source_choices for source_choices in _choices_by_language(source)]
    return [cell_renderer(kind, per_language[index], words) for index, kind in enumerate(source.kinds)]


def _choices_by_language(source: Source) -> list[dict[str, tuple[str, ...]] | None]:
    found: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for language in LANGUAGES:
        with translation.override(language):
            for index, labels in source.choices().items():
                for value, label in labels.items():
                    found[index][value].append(escape(label))
    return [
        {value: tuple(texts) for value, texts in found[index].items()} if index in found else None
        for index in range(len(source.columns))
    ]


# --- The same, written by PostgreSQL -------------------------------------------------------------------
#
# For the tables the archive streams, the database writes each row's HTML in both languages (Python
# writing 100,000 rows twice took twice as long as the whole export had). Each expression here has
# its twin above; tests compare the two.

# to_char's "Mon" is English whatever the server's locale; "FM" drops the day's leading zero.
LOCAL_TIME_FORMATS = ("DD.MM.YYYY HH24:MI", "FMDD Mon YYYY, HH24:MI")
DATE_FORMATS = ("DD.MM.YYYY", "FMDD Mon YYYY")
AMOUNT_FORMAT = "FM999,999,999,999,990.00"
# A text PostgreSQL can read as a time without raising (a message's sent_at is whatever was stored):
# the pattern first, then the day against the month's length, so the cast never fails.
VALID_TIME_PATTERN = (
    r"^[1-9][0-9]{3}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"
)
# With the pattern matched, the numbers PostgreSQL would refuse: a month, day or hour out of range.
# Nested CASEs, since SQL does not promise to evaluate AND from the left.
VALID_TIME_SQL = (
    "CASE WHEN substr({t}, 6, 2)::int BETWEEN 1 AND 12 AND substr({t}, 12, 2)::int < 24 THEN "
    "CASE WHEN substr({t}, 9, 2)::int BETWEEN 1 AND extract(day FROM make_date(substr({t}, 1, 4)::int, "
    "substr({t}, 6, 2)::int, 1) + interval '1 month - 1 day') THEN {shown} END END"
)


def _sql_escape(sql: str) -> str:
    return f"replace(replace(replace({sql}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _time_zone() -> str:
    zone = settings.TIME_ZONE
    if not re.fullmatch(r"[A-Za-z0-9_/+-]+", zone):
        raise ValueError(f"TIME_ZONE {zone!r} is not a time zone name")
    return _sql_literal(zone)


def _local_time_sql(sql: str, index: int) -> str:
    return f"to_char(timezone({_time_zone()}, {sql}), '{LOCAL_TIME_FORMATS[index]}')"


def _messages_sql(column: str, index: int) -> str:
    """`messages_cell` in SQL: a JSON list of messages, or NULL when it is something else."""
    sent = "m->>'sent_at'"
    when = (
        f"CASE WHEN jsonb_typeof(m->'sent_at') IS DISTINCT FROM 'string' OR {sent} = '' THEN '' "
        f"WHEN {sent} ~ '{VALID_TIME_PATTERN}' THEN coalesce("
        f"{VALID_TIME_SQL.format(t=sent, shown=_local_time_sql(f'({sent})::timestamptz', index))}, "
        f"{_sql_escape(sent)}) "
        f"ELSE {_sql_escape(sent)} END"
    )
    item = (
        f"'<li><span class=\"meta\">' || {when} || ' · ' || {_sql_escape("coalesce(m->>'sender', '')")} "
        f"|| '</span><div class=\"body\">' || {_sql_escape("coalesce(m->>'body', '')")} || '</div>'"
    )
    # `column` is a compiled column reference; every text in here is a literal (`_sql_literal`).
    return (
        f"CASE WHEN jsonb_typeof({column}) = 'array' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements("  # noqa: S608
        f"{column}) AS x(m) WHERE jsonb_typeof(m) <> 'object' OR NOT m ? 'body') THEN "
        f"'<ol class=\"messages\">' || coalesce((SELECT string_agg({item}, '' ORDER BY n) FROM "
        f"jsonb_array_elements({column}) WITH ORDINALITY AS y(m, n)), '') || '</ol>' "
        f"WHEN jsonb_typeof({column}) = 'null' THEN '' END"
    )


def cell_sql(
    column: Column, sql: str, index: int, words: Words, choices: dict[str, tuple[str, ...]] | None
) -> str:
    """The SQL of one cell in language `index`, given the SQL of the column's value; NULL where
    Python writes the cell instead (the whole row is then written by Python)."""
    kind = column.kind
    if kind == "datetime":
        shown = _local_time_sql(sql, index)
    elif kind == "date":
        shown = f"to_char({sql}, '{DATE_FORMATS[index]}')"
    elif kind == "amount":
        written = f"to_char({sql}, '{AMOUNT_FORMAT}')"
        shown = f"translate({written}, ',.-', '\u00a0,−')" if index == 0 else f"replace({written}, '-', '−')"
    elif kind == "boolean":
        shown = (
            f"CASE WHEN {sql} THEN {_sql_literal(words.yes[index])} ELSE {_sql_literal(words.no[index])} END"
        )
    elif kind == "number":
        shown = f"({sql})::text"
    elif kind == "json":
        shown = _messages_sql(sql, index)
    elif kind == "choice" and choices:
        branches = " ".join(
            f"WHEN {_sql_literal(value)} THEN {_sql_literal(labels[index])}"
            for value, labels in choices.items()
        )
        shown = f"CASE ({sql})::text {branches} ELSE {_sql_escape(f'({sql})::text')} END"
    else:
        shown = _sql_escape(f"({sql})::text")
    return f"CASE WHEN {sql} IS NULL THEN '{EMPTY}' ELSE {shown} END"


def row_html_sql(columns: Sequence[Column], words: Words) -> list[Expression]:
    """Each row as `<tr>` HTML, one expression per language; NULL for a row Python must write."""
    choices = _column_choices(columns)
    expressions: list[Expression] = []
    for index in LANGUAGES_AT:
        cells = [
            _CellSQL(column, index, words, choice) for column, choice in zip(columns, choices, strict=True)
        ]
        expressions.append(
            Func(
                *cells,
                template="('<tr><td>' || %(expressions)s)",
                arg_joiner=" || '<td>' || ",
                output_field=models.TextField(),
            )
        )
    return expressions


class _CellSQL(Func):
    """One cell, its value's SQL put into `cell_sql` (a column may be named in it more than once)."""

    output_field = models.TextField()

    def __init__(
        self, column: Column, index: int, words: Words, choices: dict[str, tuple[str, ...]] | None
    ) -> None:
        super().__init__(F(column.lookup))
        self.column, self.index, self.words, self.choices = column, index, words, choices

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        value_sql, params = compiler.compile(self.source_expressions[0])
        if params:
            raise ValueError("a cell's value must be a column, without parameters")
        # `%` would be taken for a parameter: the formats hold none, texts are doubled.
        return cell_sql(self.column, value_sql, self.index, self.words, self.choices).replace("%", "%%"), []


def _column_choices(columns: Sequence[Column]) -> list[dict[str, tuple[str, ...]] | None]:
    found: list[dict[str, tuple[str, ...]] | None] = []
    for column in columns:
        if column.kind != "choice":
            found.append(None)
            continue
        labels: dict[str, list[str]] = defaultdict(list)
        for language in LANGUAGES:
            with translation.override(language):
                for value, label in column.choices.items():
                    labels[value].append(escape(label))
        found.append({value: tuple(texts) for value, texts in labels.items()})
    return found


# --- Pages ---------------------------------------------------------------------------------------------


@dataclass
class Page:
    number: int  # from 1; page 1 is inlined in index.html
    first_row: int  # from 1
    rows: int
    spans: list[tuple[int, int]]  # (offset, size) in the page store, per language


@dataclass
class ReadableTable:
    """One table of the export as HTML, paged, in every language. Rows nested under it (an
    invoice's lines) are part of its pages."""

    source: Source
    category_key: str
    store: IO[bytes]
    headings: list[str]  # per language: the table's `<thead>` cells
    pages: list[Page] = field(default_factory=list)
    grouped: bool = False  # each row is a <tbody> of its own, with the rows nested under it
    rows_shown: int = 0  # the table's own rows and the rows nested under them
    _pending: list[list[str]] = field(default_factory=list)  # per language: rendered rows
    _pending_rows: int = 0

    def __post_init__(self) -> None:
        self._pending = [[] for _language in LANGUAGES]

    def add(self, rendered: Sequence[str], *, nested_rows: int = 0) -> None:
        """One row, rendered once per language (with what nests under it)."""
        for pending, text in zip(self._pending, rendered, strict=True):
            pending.append(text)
        self._pending_rows += 1
        self.rows_shown += 1 + nested_rows
        if self._pending_rows >= PAGE_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending_rows and self.pages:
            return
        spans = []
        for pending in self._pending:
            data = "".join(pending).encode()
            self.store.seek(0, 2)
            spans.append((self.store.tell(), len(data)))
            self.store.write(data)
            pending.clear()
        first = self.pages[-1].first_row + self.pages[-1].rows if self.pages else 1
        self.pages.append(Page(len(self.pages) + 1, first, self._pending_rows, spans))
        self._pending_rows = 0

    def body(self, page: Page, language_index: int) -> str:
        offset, size = page.spans[language_index]
        self.store.seek(offset)
        return self.store.read(size).decode()

    def page_name(self, language: str, number: int) -> str:
        """Where a page is in the ZIP: page 1 is in index.html, the others in their own files."""
        if number == 1:
            return "index.html"
        return f"{PAGES_FOLDER}/{self.source.stem}-{number}.{language}.html"

    def page_href(self, language: str, number: int, anchor: str) -> str:
        """A link, from the page being filled now, to `anchor` on page `number` of this table."""
        current = len(self.pages) + 1
        if number == current:
            return anchor
        name = self.page_name(language, number)
        if current == 1:  # from index.html
            return name + anchor
        return ("../" + name if number == 1 else name.removeprefix(PAGES_FOLDER + "/")) + anchor


def table_heading(labels: Sequence[str]) -> str:
    return "<tr>" + "".join(f'<th scope="col">{escape(label)}</th>' for label in labels) + "</tr>"


def headings_for(source: Source) -> list[str]:
    headings = []
    for language in LANGUAGES:
        with translation.override(language):
            _description, labels = source.describe()
        headings.append(table_heading(labels))
    return headings


def stream_table(
    source: Source, category_key: str, store: IO[bytes], words: Words
) -> tuple[ReadableTable, Callable[[Sequence[Sequence[Any]]], None]]:
    """A table whose HTML is rendered from the rows the archive streams: the table, and what the
    archive calls with each batch."""
    readable = ReadableTable(source, category_key, store, headings_for(source))
    html_at = None
    if source.database_columns:
        # The database writes each row as HTML, as fast as it writes the CSV: Python's twin of
        # each cell (`cell_renderer`) is the oracle the tests hold it to.
        html_at = len(source.columns)
        source.extra_sql = {
            f"export_html_{language}": sql
            for language, sql in zip(LANGUAGES, row_html_sql(source.database_columns, words), strict=True)
        }
    renderer = RowRenderer(source_renderers(source, words), html_at=html_at)

    def add_batch(batch: Sequence[Sequence[Any]]) -> None:
        rows = renderer.rows
        add = readable.add
        if source.json_as_is is None:  # a processor's values arrive as Python objects
            batch = [[None if value is None else csv_cell(value) for value in row] for row in batch]
        for row in batch:
            add(rows(row))

    return readable, add_batch


# --- Rows nested under others ------------------------------------------------------------------------


@dataclass(frozen=True)
class Nesting:
    """Tables of one category whose rows belong to a row of another of its tables: an invoice's
    lines and payments, a contact's sign-in and its e-mail addresses. Found from the paths the
    data map declares: a child's path is a foreign key to the parent's model, then the parent's path."""

    parent: data_map.Table
    children: tuple[tuple[data_map.Table, str], ...]  # (child table, its foreign key to the parent)


def nestings(category: data_map.Category) -> tuple[list[Nesting], set[data_map.Table]]:
    """Each parent table with its children, and the children: one level deep. A child whose parent
    is itself a child (a contact's user's e-mail addresses) is shown as a table of its own."""
    children: dict[data_map.Table, list[tuple[data_map.Table, str]]] = defaultdict(list)
    for child in category.tables:
        if child.rows is not None or "__" not in child.customer_path:
            continue
        key, _sep, rest = child.customer_path.partition("__")
        target = child.model_class._meta.get_field(key).related_model
        for parent in category.tables:
            if parent is not child and parent.model_class is target and parent.customer_path == rest:
                children[parent].append((child, key))
                break
    nested = {child for found in children.values() for child, _key in found}
    parents = [parent for parent in children if parent not in nested]
    return [Nesting(parent, tuple(children[parent])) for parent in parents], {
        child for parent in parents for child, _key in children[parent]
    }


class NestedTable:
    """The HTML of a parent table with its children's rows under each of its rows, rendered from
    queries of their own: PAGE_ROWS parents at a time, and the children of those parents."""

    def __init__(
        self,
        nesting: Nesting,
        readable: ReadableTable,
        customer_id: int,
        words: Words,
        child_sources: dict[data_map.Table, Source],
    ) -> None:
        self.nesting = nesting
        self.readable = readable
        readable.grouped = True
        self.customer_id = customer_id
        self.words = words
        self.child_sources = child_sources
        parent = nesting.parent
        self.parent_columns = columns_of(parent.model_class, parent.fields)
        self.anchor_index = next(
            (
                index
                for index, column in enumerate(self.parent_columns)
                if column.reference is None and REFERENCED_BY.get(parent.model) == column.name
            ),
            None,
        )

    def render(self) -> None:
        parent = self.nesting.parent
        model = parent.model_class
        renderer = RowRenderer(renderers_for(self.parent_columns, self.words))
        child_parts = [self._child_part(child, key) for child, key in self.nesting.children]
        links = self._reference_links()
        aliases = {
            f"export_column_{index}": column.text_sql for index, column in enumerate(self.parent_columns)
        }
        base = parent.rows_for_customer(self.customer_id)
        last_pk: Any = None
        width = len(self.parent_columns)
        while True:
            page = base if last_pk is None else base.filter(pk__gt=last_pk)
            rows = list(page.annotate(**aliases).values_list("pk", *aliases)[:PAGE_ROWS])
            if not rows:
                break
            last_pk = rows[-1][0]
            pks = [row[0] for row in rows]
            nested = [part(pks) for part in child_parts]
            link_for = links(rows) if links is not None else None
            for row in rows:
                pk, values = row[0], row[1:]
                cells = renderer.cells(values)
                if link_for is not None:
                    link_for(values, cells)
                nested_html: list[list[str]] = [[] for _language in LANGUAGES]
                nested_count = 0
                for html_by_pk, counts in nested:
                    nested_count += counts.get(pk, 0)
                    for index, texts in enumerate(html_by_pk.get(pk, ())):
                        nested_html[index].append(texts)
                rendered = []
                for index, language in enumerate(LANGUAGES):
                    anchor = ""
                    if self.anchor_index is not None and values[self.anchor_index] is not None:
                        anchor = f' id="{language}-{model._meta.model_name}-{values[self.anchor_index]}"'
                    text = f"<tbody><tr{anchor}><td>" + "<td>".join(cells[index])
                    if nested_html[index]:
                        text += f'<tr class="nested"><td colspan="{width}">' + "".join(nested_html[index])
                    rendered.append(text + "</tbody>")
                self.readable.add(rendered, nested_rows=nested_count)
            if len(rows) < PAGE_ROWS:
                break

    def _child_part(
        self, child: data_map.Table, key: str
    ) -> Callable[[list[Any]], tuple[dict[Any, list[str]], dict[Any, int]]]:
        """For a page of parents: each parent's child rows as a small table per language."""
        columns = [
            column
            for column in columns_of(child.model_class, child.fields)
            if not (column.reference is not None and column.reference.name == key)
        ]
        renderer = RowRenderer(renderers_for(columns, self.words))
        source = self.child_sources[child]
        captions = []
        for language in LANGUAGES:
            with translation.override(language):
                description, _labels = source.describe()
                labels = [column.label for column in columns]
            captions.append((escape(description), table_heading(labels)))
        aliases = {f"export_column_{index}": column.text_sql for index, column in enumerate(columns)}
        field_name = key  # a foreign key, or the reverse of one (a contact's user): the parent's pk

        def part(parent_pks: list[Any]) -> tuple[dict[Any, list[str]], dict[Any, int]]:
            rows = (
                child.rows_for_customer(self.customer_id)
                .filter(**{f"{field_name}__in": parent_pks})
                .annotate(**aliases)
                .order_by(field_name, "pk")
                .values_list(field_name, *aliases)
            )
            by_parent: dict[Any, list[list[str]]] = defaultdict(lambda: [[] for _language in LANGUAGES])
            counts: dict[Any, int] = defaultdict(int)
            for row in rows.iterator(chunk_size=PAGE_ROWS):
                counts[row[0]] += 1
                for index, cells in enumerate(renderer.cells(row[1:])):
                    by_parent[row[0]][index].append("<tr><td>" + "<td>".join(cells))
            html_by_parent = {
                parent: [
                    f'<table class="nested" data-file="{source.stem}"><caption>{captions[index][0]}</caption>'
                    f"<thead>{captions[index][1]}</thead><tbody>{''.join(texts)}</tbody></table>"
                    for index, texts in enumerate(per_language)
                ]
                for parent, per_language in by_parent.items()
            }
            return html_by_parent, counts

        return part

    def _reference_links(
        self,
    ) -> Callable[[list[Any]], Callable[[Sequence[Any], list[list[str]]], None]] | None:
        """A credit note names the invoice it credits, linked to where that invoice is shown."""
        parent = self.nesting.parent
        model = parent.model_class
        referenced = REFERENCED_BY.get(parent.model)
        linking = [
            index
            for index, column in enumerate(self.parent_columns)
            if column.reference is not None and column.reference.related_model is model
        ]
        if referenced is None or not linking:
            return None
        base = parent.rows_for_customer(self.customer_id)
        readable = self.readable

        def for_page(rows: list[Any]) -> Callable[[Sequence[Any], list[list[str]]], None]:
            numbers = {row[1 + index] for row in rows for index in linking if row[1 + index] is not None}
            # Where each referenced row is shown: its position among the customer's rows of the table.
            before = (
                base.filter(pk__lt=OuterRef("pk"))
                .order_by()
                .values(parent.customer_path or "pk")
                .annotate(count=Count("pk"))
                .values("count")
            )
            positions = dict(
                base.filter(**{f"{referenced}__in": [int(number) for number in numbers]})
                .annotate(before=Subquery(before))
                .values_list(referenced, "before")
            )

            def link(values: Sequence[Any], cells: list[list[str]]) -> None:
                for index in linking:
                    number = values[index]
                    if number is None or int(number) not in positions:
                        continue
                    page_number = (positions[int(number)] or 0) // PAGE_ROWS + 1
                    for language_index, language in enumerate(LANGUAGES):
                        target = f"#{language}-{model._meta.model_name}-{number}"
                        href = readable.page_href(language, page_number, target)
                        cells[language_index][index] = f'<a href="{href}">{cells[language_index][index]}</a>'

            return link

        return for_page


def in_pages(readable: ReadableTable) -> Iterator[tuple[str, str, Page, int]]:
    """Every page but the first (which index.html holds): (file name, language, page, language index)."""
    for page in readable.pages[1:]:
        for index, language in enumerate(LANGUAGES):
            yield readable.page_name(language, page.number), language, page, index
