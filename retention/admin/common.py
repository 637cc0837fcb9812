"""What the retention screens share: how a day and a category are shown, the category filter, and
the read-only base of the proof-of-deletion screens."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from retention import data_map, services


def day_text(day: date | None) -> str:
    return date_format(day, "SHORT_DATE_FORMAT") if day else "–"


def category_name(key: str) -> str:
    try:
        return str(data_map.category(key).name)
    except KeyError:  # a purge registered without a data-map category of its own
        return key


class CategoryFilter(admin.SimpleListFilter):
    """Data categories by name, from the purges themselves (no query for the choices)."""

    title = _("category")
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(key, category_name(key)) for key in services.PURGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(category=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Proof of deletion: staff may look, nobody may add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
