"""The customer screen.

Its changelist loads its rows in a constant number of queries (relationship status is one SQL
annotation, related names come through select_related); tests hold each one to that with 50 rows.

The customer screen is the one other apps add to (retention adds when the data goes and the legal
holds): `customers` knows none of them, so they register a `CustomerAdminExtension` with
`customer_admin_extension`, and `CustomerAdmin` asks every registered extension for its columns,
filters, read-only fields, fieldsets and queryset annotations on each request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from customers.models import Contact, Contract, Customer, CustomerQuerySet
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
        return queryset.search(search_term), False  # ids, never a join: no duplicates

    @admin.display(description=_("relationship"), ordering="relationship_status")
    def relationship_display(self, customer: Customer) -> str:
        status = getattr(customer, "relationship_status", None) or customer.relationship().status.value
        return str(RELATIONSHIP_LABELS[status])

    @admin.display(description=_("relationship ended"), ordering="relationship_ended_on")
    def relationship_ended_on_display(self, customer: Customer) -> str:
        ended_on = getattr(customer, "relationship_ended_on", None)
        return date_format(ended_on, "SHORT_DATE_FORMAT") if ended_on else "–"
