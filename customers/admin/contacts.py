"""A customer's contact people."""

from __future__ import annotations

from django.contrib import admin

from customers.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "email", "phone", "role"]
    list_select_related = ["customer"]
    search_fields = ["name", "email", "customer__name"]
    autocomplete_fields = ["customer"]
    list_per_page = 50
