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
from django.utils.text import capfirst
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


def as_text_sql(field: models.Field[Any, Any]) -> tuple[Expression | F, bool]:
    """The SQL giving `field` as text, and whether that text is JSON already."""
    kind = getattr(field, "target_field", field) if field.is_relation else field  # a foreign key: its id
    json_as_is = isinstance(kind, _JSON_AS_IS)
    if isinstance(kind, models.JSONField):
        return Cast(field.name, models.TextField()), True
    if isinstance(kind, _TEXT_AS_IS):
        return F(field.name), False
    if isinstance(kind, models.DateTimeField):
        return Func(F(field.name), template=UTC_TIMESTAMP_SQL, output_field=models.TextField()), False
    return Func(F(field.name), template=AS_JSON_TEXT_SQL, output_field=models.TextField()), json_as_is


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


def csv_cell(value: Any) -> str:
    """A processor's value as a CSV cell, written as the database's values are."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
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
    name: str
    columns: tuple[str, ...]
    # Database tables: each row's values as text, and per column whether the text is JSON already.
    # Processors' tables: Python values, and None here.
    rows: Callable[[], Iterator[Sequence[Any]]]
    json_as_is: tuple[bool, ...] | None
    row_count: int | None  # known before streaming for the database's tables
    describe: Callable[[], tuple[str, list[str]]]  # (description, column labels) in the active language
    path: str = ""  # the CSV's name in the ZIP, unique (a category may hold one model twice)
    rows_written: int = 0


def database_source(category_key: str, table: data_map.Table, customer_id: int) -> Source:
    queryset = table.rows_for_customer(customer_id)
    model = table.model_class
    texts = [
        as_text_sql(cast("models.Field[Any, Any]", model._meta.get_field(name))) for name in table.fields
    ]
    aliases = [f"export_column_{index}" for index in range(len(texts))]
    as_text = queryset.annotate(**{alias: text for alias, (text, _) in zip(aliases, texts, strict=True)})

    def rows() -> Iterator[Sequence[Any]]:
        # A server-side cursor: ROWS_PER_FETCH rows in memory at a time, whatever the table's size.
        return iter(as_text.values_list(*aliases).iterator(chunk_size=ROWS_PER_FETCH))

    def describe() -> tuple[str, list[str]]:
        description = str(table.description or capfirst(model._meta.verbose_name_plural))
        labels = [
            str(capfirst(getattr(model._meta.get_field(name), "verbose_name", name))) for name in table.fields
        ]
        return description, labels

    json_as_is = tuple(flag for _, flag in texts)
    return Source(category_key, table.model, table.fields, rows, json_as_is, queryset.count(), describe)


def external_source(category_key: str, table: ExternalTable) -> Source:
    def describe() -> tuple[str, list[str]]:
        labels = [str(label) for label in table.column_labels] or list(table.columns)
        return str(table.description or table.name), labels

    return Source(category_key, table.name, table.columns, lambda: iter(table.rows), None, None, describe)


def sources_for(customer: Customer) -> dict[str, list[Source]]:
    sources: dict[str, list[Source]] = {}
    for category in data_map.categories():
        found = [database_source(category.key, table, customer.pk) for table in category.tables]
        found += [external_source(category.key, table) for table in export_tables(customer, category.key)]
        used: set[str] = set()
        for source in found:
            stem, number = f"{category.key}/{source.name}", 1
            while (path := stem + (f"-{number}" if number > 1 else "") + ".csv") in used:
                number += 1
            source.path = path
            used.add(path)
        sources[category.key] = found
    return sources


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
        "description": description,
        "columns": [
            {"name": name, "label": label} for name, label in zip(source.columns, labels, strict=True)
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
            }
            for index, column in enumerate(first["columns"])
        ],
    }
