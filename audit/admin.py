"""The audit trail in the admin: read-only, for the Privacy officer group (and superusers).

Who sees it follows from the `audit.view_auditevent` permission, which only the Privacy officer
group holds (retention/migrations/0003_privacy_officer_permissions.py). Nobody adds, changes or
deletes an event here, whatever their permissions; the database refuses it anyway.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "actor_display", "customer_id", "object_type", "object_id"]
    list_filter = ["kind", "object_type"]
    search_fields = ["=customer_id", "=actor__id", "=object_id"]
    search_help_text = _("Customer id, staff user id or record id")
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    list_per_page = 100
    fields = ("created_at", "kind", "actor_display", "customer_id", "object_type", "object_id")
    readonly_fields = fields
    # The changelist counts with one query; a full COUNT(*) of a large trail is left out.
    show_full_result_count = False

    @admin.display(description=_("staff user"), ordering="actor_id")
    def actor_display(self, event: AuditEvent) -> str:
        if event.actor_id is None:
            return "–"
        return f"#{event.actor_id} {event.actor}" if event.actor is not None else f"#{event.actor_id}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
