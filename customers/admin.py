"""Staff screens for customers, contracts, invoices and correspondence.

Every changelist loads its rows in a constant number of queries (relationship status is one SQL
annotation, related names come through select_related); tests hold each one to that with 50 rows.

The customer screen is the one other apps add to (retention adds when the data goes and the legal
holds): `customers` knows none of them, so they register a `CustomerAdminExtension` with
`customer_admin_extension`, and `CustomerAdmin` asks every registered extension for its columns,
filters, read-only fields, fieldsets and queryset annotations on each request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import DecimalField, F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from customers import services
from customers.models import (
    INVOICE_RECORD_FIELDS,
    Contact,
    Contract,
    Correspondence,
    Customer,
    CustomerQuerySet,
    Invoice,
    InvoiceLine,
    Payment,
)
from customers.relationship import RelationshipStatus

RELATIONSHIP_LABELS = {
    RelationshipStatus.ACTIVE.value: _("Active"),
    RelationshipStatus.ENDED.value: _("Ended"),
    RelationshipStatus.NO_CONTRACT.value: _("No contract"),
}


class RelationshipStatusFilter(admin.SimpleListFilter):
    title = _("relationship")
    parameter_name = "relationship"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(RELATIONSHIP_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in RELATIONSHIP_LABELS:
            return queryset.filter(relationship_status=self.value())
        return queryset


class CustomerAdminExtension:
    """What another app adds to the customer screen. Subclass, set the names and override what
    you need; the columns and read-only fields are methods of the extension, taking the customer."""

    list_display: Sequence[str] = ()
    # Placed right after the relationship filter, before the customers admin's own others.
    list_filter: Sequence[Any] = ()
    readonly_fields: Sequence[str] = ()

    def get_queryset(self, request: HttpRequest, queryset: CustomerQuerySet) -> CustomerQuerySet:
        """Annotate what the columns need, so the changelist keeps a constant number of queries."""
        return queryset

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None) -> list[tuple[Any, dict[str, Any]]]:
        """Fieldsets appended to the change page's (their fields among `readonly_fields`)."""
        return []


CUSTOMER_ADMIN_EXTENSIONS: list[CustomerAdminExtension] = []


def customer_admin_extension[E: type[CustomerAdminExtension]](extension_class: E) -> E:
    """Class decorator: add an extension to the customer screen (once, at the app's admin import)."""
    if not any(type(known) is extension_class for known in CUSTOMER_ADMIN_EXTENSIONS):
        CUSTOMER_ADMIN_EXTENSIONS.append(extension_class())
    return extension_class


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "email", "phone", "role", "portal_access"]


class ContractInline(admin.TabularInline):
    model = Contract
    extra = 0
    fields = ["service", "monthly_price", "started_on", "ended_on"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "organisation_number",
        "email",
        "relationship_display",
        "relationship_ended_on_display",
    ]
    list_filter = [RelationshipStatusFilter, "kind"]
    search_fields = ["name", "email", "organisation_number"]
    search_help_text = _("Name, e-mail (also a contact's), organisation number or invoice number")
    readonly_fields = ["relationship_display", "relationship_ended_on_display", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["kind", "name", "organisation_number"]}),
        (
            _("Contact details"),
            {"fields": ["email", "phone", "street_address", "postal_code", "city", "country"]},
        ),
        (
            _("Relationship"),
            {
                "fields": [
                    "relationship_display",
                    "relationship_ended_on_display",
                    "user",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    raw_id_fields = ["user"]
    inlines = [ContactInline, ContractInline]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> CustomerQuerySet:
        queryset = super().get_queryset(request)
        assert isinstance(queryset, CustomerQuerySet)
        queryset = queryset.with_relationship()
        for extension in CUSTOMER_ADMIN_EXTENSIONS:
            queryset = extension.get_queryset(request, queryset)
        return queryset

    # --- What the registered extensions add (see CustomerAdminExtension) ---

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        added = [name for extension in CUSTOMER_ADMIN_EXTENSIONS for name in extension.list_display]
        return [*super().get_list_display(request), *added]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        own = list(super().get_list_filter(request))
        added = [item for extension in CUSTOMER_ADMIN_EXTENSIONS for item in extension.list_filter]
        return [*own[:1], *added, *own[1:]]

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> list[str]:
        added = [name for extension in CUSTOMER_ADMIN_EXTENSIONS for name in extension.readonly_fields]
        return [*super().get_readonly_fields(request, obj), *added]

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        added = [
            fieldset
            for extension in CUSTOMER_ADMIN_EXTENSIONS
            for fieldset in extension.get_fieldsets(request, obj)
        ]
        return [*super().get_fieldsets(request, obj), *added]

    def __getattr__(self, name: str) -> Any:
        # The admin looks a column or read-only field up by name on the ModelAdmin: an extension's
        # names resolve to the extension's methods.
        for extension in CUSTOMER_ADMIN_EXTENSIONS:
            if name in extension.list_display or name in extension.readonly_fields:
                return getattr(extension, name)
        raise AttributeError(name)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        assert isinstance(queryset, CustomerQuerySet)
        return queryset.search(search_term), True

    @admin.display(description=_("relationship"), ordering="relationship_status")
    def relationship_display(self, customer: Customer) -> str:
        status = getattr(customer, "relationship_status", None) or customer.relationship().status.value
        return str(RELATIONSHIP_LABELS[status])

    @admin.display(description=_("relationship ended"), ordering="relationship_ended_on")
    def relationship_ended_on_display(self, customer: Customer) -> str:
        ended_on = getattr(customer, "relationship_ended_on", None)
        return date_format(ended_on, "SHORT_DATE_FORMAT") if ended_on else "–"


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "service", "monthly_price", "started_on", "ended_on"]
    list_filter = ["service", ("ended_on", admin.EmptyFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__organisation_number"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "started_on"
    list_per_page = 50


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


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "invoice", "amount", "paid_on", "reference"]
    list_select_related = ["invoice"]
    search_fields = ["=invoice__number", "reference"]
    autocomplete_fields = ["invoice"]
    date_hierarchy = "paid_on"
    list_per_page = 50


@admin.register(Correspondence)
class CorrespondenceAdmin(admin.ModelAdmin):
    list_display = ["subject", "customer", "channel", "external_id", "opened_at", "last_message_at"]
    list_filter = ["channel"]
    list_select_related = ["customer"]
    search_fields = ["subject", "external_id", "customer__name", "customer__email"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "last_message_at"
    list_per_page = 50


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "email", "phone", "role"]
    list_select_related = ["customer"]
    search_fields = ["name", "email", "customer__name"]
    autocomplete_fields = ["customer"]
    list_per_page = 50
