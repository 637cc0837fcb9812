"""The deletion log, the proof of deletion: read-only, whatever the user's permissions."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retention.admin.common import CategoryFilter, ReadOnlyAdmin, category_name
from retention.models import DeletionLog


@admin.register(DeletionLog)
class DeletionLogAdmin(ReadOnlyAdmin):
    list_display = ["deleted_at", "category_display", "model", "customer_id", "count", "rule", "run_link"]
    list_filter = [CategoryFilter, "model"]
    search_fields = ["=customer_id", "=run__id"]
    search_help_text = _("Customer id or purge run id")
    date_hierarchy = "deleted_at"
    list_per_page = 100
    fields = [
        "run_link",
        "category",
        "model",
        "customer_id",
        "count",
        "ids_display",
        "rule",
        "deleted_at",
    ]
    readonly_fields = ["run_link", "ids_display"]

    @admin.display(description=_("category"), ordering="category")
    def category_display(self, entry: DeletionLog) -> str:
        return category_name(entry.category)

    @admin.display(description=_("purge run"))
    def run_link(self, entry: DeletionLog) -> SafeString:
        url = reverse("admin:retention_purgerun_change", args=[entry.run_id])
        return format_html('<a href="{}">#{}</a>', url, entry.run_id)

    @admin.display(description=_("record ids"))
    def ids_display(self, entry: DeletionLog) -> str:
        listed = ", ".join(str(pk) for pk in entry.record_ids)
        if entry.count > len(entry.record_ids) and entry.first_id is not None:
            # Large batches list only their first ids; the range and count stand for the rest.
            summary = gettext("%(count)s rows, ids %(first)s–%(last)s") % {
                "count": entry.count,
                "first": entry.first_id,
                "last": entry.last_id,
            }
            return f"{listed} … ({summary})" if listed else summary
        return listed or "–"
