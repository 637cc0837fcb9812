"""What goes into an export: every table of the data map for one customer, and the tables the
processors hold about her (asked of the configured connectors, `processors.registry.export_tables`);
each value as text, and the words that describe each category in both languages.

Rows come only through `Table.rows_for_customer(customer_id)` (the path the data map declares) or a
connector given the same customer, so another customer's rows cannot slip in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from django.db import models
from django.db.models import Expression, F, Func
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from processors.base import ExternalTable
from processors.registry import export_tables
from retention import data_map

# Rows fetched per round trip from a server-side cursor, and written to the ZIP at a time.
ROWS_PER_FETCH = 1000
LANGUAGES = ("nb", "en")

# What the customer is told about a category with no table in the portal, and how to get at it.
CATEGORY_NOTES: dict[str, Promise] = {
    "server_logs": _(
        "Server logs are not linked to your customer account: they hold IP addresses and the pages "
        "asked for, not names, so we cannot pick out yours. If you tell us the IP addresses you used "
        "and when, we look them up and send you what we find."
    ),
    "web_analytics": _(
        "Google Analytics does not know who you are, and neither do we from its data. If you send us "
        "the identifier in your browser's _ga cookie, we look it up and send you what Google holds."
    ),
}
NOTHING_STORED_NOTE = _("We hold nothing in this category that is linked to your customer account.")


# --- Values as text --------------------------------------------------------------------------------
#
# PostgreSQL writes every value of the database's tables as text, as COPY would: times in UTC,
# ISO 8601 ("2025-03-31T10:00:00.000000Z"), dates ISO, amounts with all their decimals, JSON as JSON.
# The CSV takes the texts as they are; data.json puts each in quotes (a JSON string) or, for
# numbers, booleans and JSON, as it is. Python touches each value once, to place it: parsing
# values into Python objects and formatting them again cost ten times the raw limit
# (benchmarks/export.py).

UTC_TIMESTAMP_SQL = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
UTC_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the same, for values that arrive as Python objects
AS_JSON_TEXT_SQL = "to_json(%(expressions)s) #>> '{}'"
# Values whose text is already JSON: placed in data.json as they are.
_JSON_AS_IS = (
    models.IntegerField,
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.FloatField,
    models.BooleanField,
    models.JSONField,
)
_TEXT_AS_IS = (models.CharField, models.TextField)


def as_text_sql(field: models.Field[Any, Any], lookup: str = "") -> tuple[Expression | F, bool]:
    """The SQL giving `field` (reached by `lookup`, its own name by default) as text, and whether
    that text is JSON already."""
    lookup = lookup or field.name
    kind = getattr(field, "target_field", field) if field.is_relation else field  # a foreign key: its id
    json_as_is = isinstance(kind, _JSON_AS_IS)
    if isinstance(kind, models.JSONField):
        return Cast(lookup, models.TextField()), True
    if isinstance(kind, _TEXT_AS_IS):
        return F(lookup), False
    if isinstance(kind, models.DateTimeField):
        return Func(F(lookup), template=UTC_TIMESTAMP_SQL, output_field=models.TextField()), False
    return Func(F(lookup), template=AS_JSON_TEXT_SQL, output_field=models.TextField()), json_as_is


def value_kind(field: models.Field[Any, Any]) -> str:
    """How a person reads the field's values (export.readable formats each kind per language)."""
    if field.is_relation:
        field = getattr(field, "target_field", field)
    if getattr(field, "choices", None):
        return "choice"
    for kind, classes in _KINDS:
        if isinstance(field, classes):
            return kind
    return "text"


_KINDS: tuple[tuple[str, tuple[type[models.Field[Any, Any]], ...]], ...] = (
    ("datetime", (models.DateTimeField,)),
    ("date", (models.DateField,)),
    ("amount", (models.DecimalField,)),
    ("boolean", (models.BooleanField,)),
    ("json", (models.JSONField,)),
    ("number", (models.IntegerField, models.AutoField, models.FloatField)),
)

# Rows refer to these records by the number a person knows them by, never by our internal id: an
# invoice line, a payment or a credit note names its invoice by invoice number.
REFERENCED_BY = {"customers.Invoice": "number"}


@dataclass(frozen=True)
class Column:
    """One column of an exported database table: its name in the files, the SQL giving its text,
    and what a person is told about it."""

    name: str
    text_sql: Expression | F
    json_as_is: bool
    kind: str
    field: models.Field[Any, Any]  # the field whose verbose name labels the column
    reference: models.Field[Any, Any] | None = None  # the foreign key, when the column follows one
    lookup: str = ""  # the ORM lookup of the value, from the table's model

    @property
    def label(self) -> str:
        own = str(capfirst(self.field.verbose_name))
        if self.reference is None:
            return own
        return f"{capfirst(self.reference.verbose_name)} ({self.field.verbose_name})"

    @property
    def choices(self) -> dict[str, str]:
        """Each stored value's label, in the active language."""
        return {str(value): str(label) for value, label in self.field.flatchoices}


def columns_of(model: type[models.Model], names: Sequence[str]) -> list[Column]:
    columns = []
    for name in names:
        field = cast("models.Field[Any, Any]", model._meta.get_field(name))
        target = field.related_model if field.is_relation else None
        referenced_by = REFERENCED_BY.get(target._meta.label) if isinstance(target, type) else None
        if isinstance(target, type) and referenced_by is not None:
            number = cast("models.Field[Any, Any]", target._meta.get_field(referenced_by))
            text, as_is = as_text_sql(number, f"{name}__{referenced_by}")
            lookup = f"{name}__{referenced_by}"
            columns.append(
                Column(f"{name}_{referenced_by}", text, as_is, value_kind(number), number, field, lookup)
            )
            continue
        text, as_is = as_text_sql(field)
        columns.append(Column(name, text, as_is, value_kind(field), field, lookup=name))
    return columns


def json_default(value: Any) -> Any:
    if isinstance(value, datetime) and timezone.is_aware(value):
        return value.astimezone(UTC).strftime(UTC_TIMESTAMP_FORMAT)  # as the database's are written
    if isinstance(value, date | time_of_day):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # a string keeps every digit; a JSON number would become a float
    if isinstance(value, UUID | Promise):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not exportable")


# For the processors' tables, whose values arrive as Python objects.
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=json_default)


def place_as_is(text: str) -> str:
    return text


# A spreadsheet program runs a cell that starts with one of these as a formula ("CSV injection"):
# such a text cell gets a leading single quote, as OWASP recommends, so it is shown, never run.
# Numbers, dates and times the database typed never need it (a negative amount stays a number).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> str:
    """A processor's value as a CSV cell, written as the database's values are."""
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return JSON_ENCODER.encode(value)
    return str(json_default(value))


# --- What goes into the export ---------------------------------------------------------------------


@dataclass
class Source:
    """One table of the export: from the portal's database or from a processor."""

    category_key: str
    name: str  # the model's label ("customers.Invoice"), or the processor's table name
    columns: tuple[str, ...]
    # Database tables: each row's values as text, and per column whether the text is JSON already.
    # Processors' tables: Python values, and None here.
    rows: Callable[[], Iterator[Sequence[Any]]]
    json_as_is: tuple[bool, ...] | None
    row_count: int | None  # known before streaming for the database's tables
    describe: Callable[[], tuple[str, list[str]]]  # (description, column labels) in the active language
    # How a person reads each column (`value_kind`), and the labels of its stored values by language.
    kinds: tuple[str, ...] = ()
    choices: Callable[[], dict[int, dict[str, str]]] = dict
    # Columns of text that may start like a formula; the others are typed by the database.
    text_columns: tuple[int, ...] = ()
    stem: str = ""  # the CSV's name in the ZIP without ".csv", unique: "invoices", "contact-users"
    # A database table's columns; and what else its rows should carry after the values, set before
    # they stream (export.readable asks for each row as HTML, written by the database).
    database_columns: tuple[Column, ...] = ()
    extra_sql: dict[str, Expression] = dataclass_field(default_factory=dict)
    rows_written: int = 0

    @property
    def path(self) -> str:
        return f"{self.stem}.csv"


def database_source(category_key: str, table: data_map.Table, customer_id: int) -> Source:
    queryset = table.rows_for_customer(customer_id)
    model = table.model_class
    columns = columns_of(model, table.fields)
    aliases = [f"export_column_{index}" for index in range(len(columns))]
    expressions = {alias: column.text_sql for alias, column in zip(aliases, columns, strict=True)}

    def rows() -> Iterator[Sequence[Any]]:
        # A server-side cursor: ROWS_PER_FETCH rows in memory at a time, whatever the table's size.
        as_text = queryset.annotate(**expressions, **source.extra_sql)
        values = as_text.values_list(*expressions, *source.extra_sql)
        return iter(values.iterator(chunk_size=ROWS_PER_FETCH))

    def describe() -> tuple[str, list[str]]:
        description = str(table.description or capfirst(model._meta.verbose_name_plural))
        return description, [column.label for column in columns]

    def choices() -> dict[int, dict[str, str]]:
        return {index: column.choices for index, column in enumerate(columns) if column.kind == "choice"}

    source = Source(
        category_key,
        table.model,
        tuple(column.name for column in columns),
        rows,
        tuple(column.json_as_is for column in columns),
        queryset.count(),
        describe,
        kinds=tuple(column.kind for column in columns),
        choices=choices,
        text_columns=tuple(
            index for index, column in enumerate(columns) if column.kind in ("text", "choice")
        ),
        stem=file_stem(table),
        database_columns=tuple(columns),
    )
    return source


def file_stem(table: data_map.Table) -> str:
    """A name a person recognises, from the model's plural in English ("invoice-lines"); a table
    reached through a contact says so ("contact-users")."""
    with translation.override("en"):
        stem = slugify(str(table.model_class._meta.verbose_name_plural))
        through = path_models(table.model_class, table.customer_path)
        contacts = [model for model in through[1:] if model._meta.label == CONTACT_MODEL]
        if contacts:
            stem = f"{slugify(str(contacts[0]._meta.verbose_name))}-{stem}"
    return stem


CONTACT_MODEL = "customers.Contact"


def path_models(model: type[models.Model], path: str) -> list[type[models.Model]]:
    """The models a lookup path passes, from `model` to the last one before the customer's id."""
    passed = [model]
    for name in path.split("__") if path and path != "pk" else []:
        field = passed[-1]._meta.get_field(name)
        target = field.related_model
        if not isinstance(target, type):
            break
        passed.append(target)
    return passed


def external_source(category_key: str, table: ExternalTable) -> Source:
    def describe() -> tuple[str, list[str]]:
        labels = [str(label) for label in table.column_labels] or list(table.columns)
        return str(table.description or table.name), labels

    return Source(
        category_key,
        table.name,
        table.columns,
        lambda: iter(table.rows),
        None,
        None,
        describe,
        kinds=("text",) * len(table.columns),
        stem=slugify(table.name.replace(".", "-")),
    )


def sources_for(customer: Customer) -> dict[str, list[Source]]:
    sources: dict[str, list[Source]] = {}
    for category in data_map.categories():
        found = [database_source(category.key, table, customer.pk) for table in category.tables]
        found += [external_source(category.key, table) for table in export_tables(customer, category.key)]
        sources[category.key] = found
    used: set[str] = set(RESERVED_STEMS)
    for source in (source for found in sources.values() for source in found):
        stem, number = source.stem, 1
        while (unique := stem + (f"-{number}" if number > 1 else "")) in used:
            number += 1
        source.stem = unique
        used.add(unique)
    return sources


# Names of the export's own files, which no table's CSV may take.
RESERVED_STEMS = ("index", "data", "manifest")


def category_texts(sources: dict[str, list[Source]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every category's words, once per language (language -> category key -> words): data.json and
    index.html say the same."""
    texts: dict[str, dict[str, dict[str, Any]]] = {}
    for language in LANGUAGES:
        # `retention` is worded when the data map is read, so it is read again in each language.
        with translation.override(language):
            texts[language] = {
                category.key: {
                    "key": category.key,
                    **{name: str(getattr(category, name)) for name in CATEGORY_TEXT_FIELDS},
                    "processors": [
                        {
                            "name": processor.name,
                            "privacy_url": processor.privacy_url,
                            "role": str(processor.role),
                            "location": str(processor.location),
                        }
                        for processor in category.processor_list()
                    ],
                    "note": ""
                    if sources[category.key]
                    else str(CATEGORY_NOTES.get(category.key, NOTHING_STORED_NOTE)),
                    "tables": [table_text(source) for source in sources[category.key]],
                }
                for category in data_map.categories()
            }
    return texts


CATEGORY_TEXT_FIELDS = (
    "name",
    "description",
    "purpose",
    "legal_basis",
    "storage",
    "retention",
    "enforced_by",
)


def table_text(source: Source) -> dict[str, Any]:
    description, labels = source.describe()
    return {
        "name": source.name,
        "file": source.path,
        "stem": source.stem,
        "description": description,
        "columns": [
            {"name": name, "label": label, "kind": kind}
            for name, label, kind in zip(source.columns, labels, source.kinds, strict=True)
        ],
    }


def category_json(key: str, texts: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """A category's description in data.json, each text keyed by language; the tables follow."""
    words = {language: texts[language][key] for language in LANGUAGES}
    first = words[LANGUAGES[0]]
    return {
        **{name: {lang: words[lang][name] for lang in LANGUAGES} for name in CATEGORY_TEXT_FIELDS},
        "rule": data_map.category(key).rule,
        "processors": [
            {
                "name": processor["name"],
                "privacy_url": processor["privacy_url"],
                "role": {lang: words[lang]["processors"][index]["role"] for lang in LANGUAGES},
                "location": {lang: words[lang]["processors"][index]["location"] for lang in LANGUAGES},
            }
            for index, processor in enumerate(first["processors"])
        ],
        "note": {lang: words[lang]["note"] for lang in LANGUAGES} if first["note"] else None,
    }


def table_json(key: str, table_index: int, texts: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    words = {language: texts[language][key]["tables"][table_index] for language in LANGUAGES}
    first = words[LANGUAGES[0]]
    return {
        "name": first["name"],
        "file": first["file"],
        "description": {lang: words[lang]["description"] for lang in LANGUAGES},
        "columns": [
            {
                "name": column["name"],
                "label": {lang: words[lang]["columns"][index]["label"] for lang in LANGUAGES},
                # How to read its values: text, choice (a code; the label is in index.html), date,
                # datetime, amount, number, boolean or json.
                "kind": column["kind"],
            }
            for index, column in enumerate(first["columns"])
        ],
    }
