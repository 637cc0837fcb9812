"""The receipt of an erasure on request, as a person reads it: the page and the e-mail render it
in the active language from the receipt's categories, counts, years and dates
(access_requests.erasure builds it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from retention import data_map


@dataclass(frozen=True)
class ReceiptSummary:
    deleted: list[tuple[str, int]]  # (category name, rows)
    kept: list[str]  # a sentence each: what, until when, why
    processors: list[tuple[str, date | None]]  # (processor, the day it confirmed)
    finished_on: date | None


def receipt_summary(receipt: dict[str, Any]) -> ReceiptSummary:
    """The receipt in the active language (the page and the e-mail render this)."""
    names = {category.key: str(category.name) for category in data_map.categories()}
    deleted = [
        (names.get(row["category"], row["category"]), int(row["count"])) for row in receipt.get("deleted", [])
    ]
    kept = []
    for item in receipt.get("kept", []):
        until = date_format(date.fromisoformat(item["until"]), "DATE_FORMAT")
        if item["kind"] == "invoices":
            years = (
                str(item["first_year"])
                if item["first_year"] == item["last_year"]
                else f"{item['first_year']}–{item['last_year']}"
            )
            kept.append(
                _(
                    "Invoices %(years)s (%(count)s, with their lines, payments and the contracts they refer "
                    "to) are kept until %(until)s: the Accounting Act (bokføringsloven) § 13 requires it. "
                    "They keep the name and address they were issued to, and nothing else about you."
                )
                % {"years": years, "count": item["count"], "until": until}
            )
        elif item["kind"] == "audit":
            kept.append(
                _(
                    "The record of which employees looked at or changed your data (ids only, no name or "
                    "address) is kept until %(until)s, for the security of processing (GDPR art. 32)."
                )
                % {"until": until}
            )
    processors = [
        (
            str(item["name"]),
            timezone.localdate(datetime.fromisoformat(item["confirmed_at"]))
            if item["confirmed_at"]
            else None,
        )
        for item in receipt.get("processors", [])
    ]
    finished = receipt.get("finished_at")
    return ReceiptSummary(
        deleted=deleted,
        kept=kept,
        processors=processors,
        finished_on=timezone.localdate(datetime.fromisoformat(finished)) if finished else None,
    )
