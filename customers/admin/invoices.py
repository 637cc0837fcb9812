"""Invoices and credit notes, with their lines and payments. An issued invoice is an accounting
record: read-only here, corrected by a credit note, deleted only by the retention purge."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import DecimalField, F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from customers import services
from customers.models import INVOICE_RECORD_FIELDS, Invoice, InvoiceLine, Payment


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    fields = ["description", "quantity", "unit_price", "vat_rate", "amount_display"]
    readonly_fields = ["amount_display"]

    @admin.display(description=_("amount (NOK)"))
    def amount_display(self, line: InvoiceLine) -> str:
        return f"{line.amount:.2f}" if line.unit_price is not None else "–"

    def _editable(self, obj: Invoice | None) -> bool:
        return obj is None or not obj.is_issued

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    fields = ["amount", "paid_on", "reference"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and obj.is_issued and super().has_add_permission(request, obj)


class PaidFilter(admin.SimpleListFilter):
    title = _("payment")
    parameter_name = "paid"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("paid", _("Paid in full")), ("open", _("Open"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "paid":
            return queryset.filter(issued_on__isnull=False, paid_amount__gte=F("total_amount"))
        if self.value() == "open":
            return queryset.filter(issued_on__isnull=False, paid_amount__lt=F("total_amount"))
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "number_display",
        "kind",
        "billed_to",
        "issued_on",
        "due_on",
        "total_amount",
        "paid_amount_display",
    ]
    list_display_links = ["number_display"]
    list_filter = ["kind", ("issued_on", admin.EmptyFieldListFilter), PaidFilter, "issued_on"]
    list_select_related = ["customer"]
    search_fields = [
        "=number",
        "billing_name",
        "billing_organisation_number",
        "billing_email",
        "customer__name",
    ]
    search_help_text = _("Invoice number, billed name, organisation number or e-mail")
    autocomplete_fields = ["customer", "contract"]
    date_hierarchy = "issued_on"
    inlines = [InvoiceLineInline, PaymentInline]
    actions = ["issue_invoices", "credit_invoices"]
    list_per_page = 50
    record_fields = INVOICE_RECORD_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        zero = Value(0, output_field=DecimalField(max_digits=12, decimal_places=2))
        return super().get_queryset(request).annotate(paid_amount=Coalesce(Sum("payments__amount"), zero))

    def get_fields(self, request: HttpRequest, obj: Invoice | None = None) -> tuple[str, ...]:
        if obj is not None and obj.is_issued:
            return ("customer", "contract", *self.record_fields)
        return ("customer", "contract", "kind", "due_on")

    def get_readonly_fields(self, request: HttpRequest, obj: Invoice | None = None) -> tuple[str, ...]:
        if obj is not None and obj.is_issued:
            return ("customer", "contract", *self.record_fields)
        return ()

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        # Issued invoices are accounting records; only the retention purge removes them.
        return (obj is None or not obj.is_issued) and super().has_delete_permission(request, obj)

    @admin.display(description=_("number"), ordering="number")
    def number_display(self, invoice: Invoice) -> str:
        return str(invoice.number) if invoice.number else str(_("Draft"))

    @admin.display(description=_("billed to"), ordering="billing_name")
    def billed_to(self, invoice: Invoice) -> str:
        if invoice.billing_name:
            return invoice.billing_name
        return invoice.customer.name if invoice.customer else "–"

    @admin.display(description=_("paid (NOK)"), ordering="paid_amount")
    def paid_amount_display(self, invoice: Invoice) -> str:
        paid = getattr(invoice, "paid_amount", None)
        if paid is None or not invoice.is_issued:
            return "–"
        if paid >= invoice.total_amount:
            return format_html('<span title="{}">✔ {}</span>', _("Paid in full"), f"{paid:.2f}")
        return f"{paid:.2f}"

    @admin.action(description=_("Issue selected draft invoices"), permissions=["change"])
    def issue_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        issued = 0
        for invoice in queryset.filter(issued_on__isnull=True):
            try:
                services.invoice_issue(invoice=invoice)
                issued += 1
            except ValidationError as error:
                self.message_user(request, f"{invoice.pk}: {' '.join(error.messages)}", messages.ERROR)
        if issued:
            self.message_user(
                request,
                ngettext("%d invoice issued.", "%d invoices issued.", issued) % issued,
                messages.SUCCESS,
            )

    @admin.action(description=_("Credit selected invoices in full"), permissions=["add"])
    def credit_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        for invoice in queryset:
            try:
                note = services.credit_note_create(invoice=invoice)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Credit note %(note)s issued for invoice %(number)s.")
                    % {"note": note.number, "number": invoice.number},
                    messages.SUCCESS,
                )
