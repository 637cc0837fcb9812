"""The customer screen's retention part: when each customer's data goes (a column and a filter),
the deletion schedule and the legal holds on the change page. Added to `customers.admin.CustomerAdmin`
through its extension point; the customer changelist keeps a constant number of queries (the
schedule is computed in Python from facts loaded as SQL annotations,
`customers_with_deletion_facts`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.admin import CustomerAdminExtension, customer_admin_extension
from customers.models import Customer, CustomerQuerySet
from retention import selectors
from retention.admin.common import category_name, day_text
from retention.models import LegalHold
from retention.schedule import scheduled


class DeletionDueFilter(admin.SimpleListFilter):
    title = _("deletion due")
    parameter_name = "deletion_due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(selectors.DeletionDue.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in selectors.DeletionDue.values:
            return selectors.customers_by_deletion_due(queryset=queryset, due=selectors.DeletionDue(value))
        return queryset


@customer_admin_extension
class RetentionColumns(CustomerAdminExtension):
    """When the customer's data goes, and their legal holds, on the customer screen."""

    list_display = ["deletion_due_display"]
    list_filter = [DeletionDueFilter]
    readonly_fields = ["deletion_schedule_display", "legal_holds_display", "place_legal_hold_link"]

    def get_queryset(self, request: HttpRequest, queryset: CustomerQuerySet) -> CustomerQuerySet:
        return selectors.customers_with_deletion_facts(queryset=queryset)

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None) -> list[tuple[Any, dict[str, Any]]]:
        if obj is None:
            return []
        fields = ["deletion_schedule_display"]
        # Holds are shown, and placed, only by staff allowed to: a hold's reason can be sensitive.
        if request.user.has_perm("retention.view_legalhold"):
            fields.append("legal_holds_display")
        if request.user.has_perm("retention.add_legalhold"):
            fields.append("place_legal_hold_link")
        return [(_("Retention"), {"fields": fields})]

    @admin.display(description=_("deletion due"))
    def deletion_due_display(self, customer: Customer) -> SafeString:
        schedule = selectors.deletion_schedule_of(customer=customer)
        account = scheduled(schedule, "customer_account")
        invoices = scheduled(schedule, "invoices")
        if account is None:  # every customer has account data; kept for type narrowing
            return format_html("{}", "–")
        if account.deletable_on is None:
            if vars(customer)["legal_hold_active"]:
                return format_html(
                    '<span title="{}">{}</span><br><small>{}</small>',
                    account.reason,
                    gettext("On legal hold"),
                    account.reason,
                )
            return format_html('<span title="{}">–</span>', account.reason)
        label = day_text(account.deletable_on)
        if account.deletable_on <= timezone.localdate():
            label = gettext("%(day)s (overdue)") % {"day": label}
        second_line = ""
        if invoices is not None and invoices.deletable_on and invoices.deletable_on > account.deletable_on:
            second_line = invoices.reason
        return format_html(
            '<span title="{}">{}</span>{}',
            account.reason,
            label,
            format_html("<br><small>{}</small>", second_line) if second_line else "",
        )

    @admin.display(description=_("deletion schedule"))
    def deletion_schedule_display(self, customer: Customer) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (category_name(item.category_key), day_text(item.deletable_on), item.reason)
                for item in selectors.deletion_schedule_of(customer=customer)
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Data"),
            _("Deleted from"),
            _("Why"),
            rows,
        )

    @admin.display(description=_("legal holds"))
    def legal_holds_display(self, customer: Customer) -> SafeString:
        # A read-only list rather than an inline: a view-only inline still demands its management
        # form in every POST of the customer form, which would break saving from scripts and tests.
        holds = LegalHold.objects.filter(customer_id=customer.pk).order_by("-placed_at")
        if not holds:
            return format_html("{}", _("None"))
        today = timezone.localdate()
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:retention_legalhold_change", args=[hold.pk]),
                    day_text(timezone.localdate(hold.placed_at)),
                    hold.reason,
                    day_text(hold.ends_on) if hold.ends_on else _("until released"),
                    day_text(timezone.localdate(hold.released_at)) if hold.released_at else "–",
                    _("active") if hold.is_active(today=today) else _("not active"),
                )
                for hold in holds
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("placed"),
            _("reason"),
            _("ends"),
            _("released"),
            _("status"),
            rows,
        )

    @admin.display(description=_("new legal hold"))
    def place_legal_hold_link(self, customer: Customer) -> SafeString:
        url = f"{reverse('admin:retention_legalhold_add')}?customer={customer.pk}"
        return format_html('<a class="button" href="{}">{}</a>', url, _("Place a legal hold"))
