"""Admin changelists that stay fast on tables with millions of rows: none counts the whole table.

Invariants:
- Wired for every ModelAdmin at the moment it is registered on the portal's admin site
  (`PortalAdminSite.register`), so no app's admin has to remember it; an admin with a paginator of
  its own keeps it.
- No changelist shows the unfiltered total beside a filtered count ("N results (M total)"): that
  total is a `COUNT(*)` of the whole table on every page view.
- An unfiltered changelist of a table PostgreSQL estimates at ESTIMATE_FROM rows or more pages by
  that estimate (pg_class.reltuples, kept current by autovacuum's ANALYZE), which costs one
  catalogue lookup instead of reading the table. Smaller tables, and every filtered or searched
  list (its WHERE narrows it, on an index), are counted exactly.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.utils.functional import cached_property

ESTIMATE_FROM = 10_000


def estimated_rows(model: type[Model], *, using: str = "default") -> int:
    """PostgreSQL's estimate of the rows in the model's table (-1 before its first ANALYZE)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [model._meta.db_table]
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


class EstimatedCountPaginator(Paginator):
    """Pages by PostgreSQL's estimate when the list is a whole large table (see the module)."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet) and not rows.query.where:
            estimate = estimated_rows(rows.model, using=rows.db)
            if estimate >= ESTIMATE_FROM:
                return estimate
        return int(super().count)


def configure(model_admin: ModelAdmin[Any]) -> None:
    """Page `model_admin`'s changelist without counting its whole table (PortalAdminSite.register
    calls it for every ModelAdmin registered on the site)."""
    # Set on the instance: the class attributes are the apps' own declarations.
    registered: Any = model_admin
    if type(model_admin).paginator is Paginator:
        registered.paginator = EstimatedCountPaginator
    registered.show_full_result_count = False
