"""Contracts: a customer's service agreements."""

from __future__ import annotations

from django.contrib import admin

from customers.models import Contract


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "service", "monthly_price", "started_on", "ended_on"]
    list_filter = ["service", ("ended_on", admin.EmptyFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__organisation_number"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "started_on"
    list_per_page = 50
