"""Payments registered against invoices."""

from __future__ import annotations

from django.contrib import admin

from customers.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "invoice", "amount", "paid_on", "reference"]
    list_select_related = ["invoice"]
    search_fields = ["=invoice__number", "reference"]
    autocomplete_fields = ["invoice"]
    date_hierarchy = "paid_on"
    list_per_page = 50
