"""Correspondence with customers (references to Zendesk tickets and e-mail threads)."""

from __future__ import annotations

from django.contrib import admin

from customers.models import Correspondence


@admin.register(Correspondence)
class CorrespondenceAdmin(admin.ModelAdmin):
    list_display = ["subject", "customer", "channel", "external_id", "opened_at", "last_message_at"]
    list_filter = ["channel"]
    list_select_related = ["customer"]
    search_fields = ["subject", "external_id", "customer__name", "customer__email"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "last_message_at"
    list_per_page = 50
