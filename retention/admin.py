"""Staff screens for retention: when each customer's data goes, legal holds, the purge runs and
their deletion log, and a preview of what a purge takes on a given day.

Invariants:
- Writes go through `retention.services` (a hold is placed and released there, with its audit
  event); this module only translates requests into those calls.
- Purge runs and the deletion log are read-only here, whatever the user's permissions (the
  database refuses changing them anyway).
- The customer changelist keeps a constant number of queries: the deletion schedule is computed
  in Python from facts loaded as SQL annotations (`customers_with_deletion_facts`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from customers.admin import CustomerAdmin
from customers.models import Customer, CustomerQuerySet
from retention import data_map, selectors, services
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.schedule import scheduled
from retention.windows import add_months

# How far ahead the preview looks: an invoice issued today goes about six years from now
# (five years after the end of its financial year), so staff can watch it happen.
PREVIEW_MAX_YEARS = 6
# Due customers listed per category on the preview page; the counts cover all of them.
PREVIEW_CUSTOMERS = 25


def _day(day: date | None) -> str:
    return date_format(day, "SHORT_DATE_FORMAT") if day else "–"


def _category_name(key: str) -> str:
    try:
        return str(data_map.category(key).name)
    except KeyError:  # a purge registered without a data-map category of its own
        return key


# --- Customers ---------------------------------------------------------------------------------


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


class RetentionCustomerAdmin(CustomerAdmin):
    """The customers admin with when their data goes, and their legal holds. Lives here because
    `customers` must not know about retention."""

    list_display = [*CustomerAdmin.list_display, "deletion_due_display"]
    # Right after the relationship filter, whatever else the customers admin filters by.
    list_filter = [
        *CustomerAdmin.list_filter[:1],
        DeletionDueFilter,
        *CustomerAdmin.list_filter[1:],
    ]
    readonly_fields = [
        *CustomerAdmin.readonly_fields,
        "deletion_schedule_display",
        "legal_holds_display",
        "place_legal_hold_link",
    ]

    def get_queryset(self, request: HttpRequest) -> CustomerQuerySet:
        return selectors.customers_with_deletion_facts(queryset=super().get_queryset(request))

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        fields = ["deletion_schedule_display"]
        # Holds are shown, and placed, only by staff allowed to: a hold's reason can be sensitive.
        if request.user.has_perm("retention.view_legalhold"):
            fields.append("legal_holds_display")
        if request.user.has_perm("retention.add_legalhold"):
            fields.append("place_legal_hold_link")
        return [*fieldsets, (_("Retention"), {"fields": fields})]

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
        label = _day(account.deletable_on)
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
                (_category_name(item.category_key), _day(item.deletable_on), item.reason)
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
                    _day(timezone.localdate(hold.placed_at)),
                    hold.reason,
                    _day(hold.ends_on) if hold.ends_on else _("until released"),
                    _day(timezone.localdate(hold.released_at)) if hold.released_at else "–",
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


if admin.site.is_registered(Customer):
    admin.site.unregister(Customer)
admin.site.register(Customer, RetentionCustomerAdmin)


# --- Legal holds -------------------------------------------------------------------------------


class LegalHoldStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("Active")), ("released", _("Released")), ("ended", _("Ended"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = timezone.localdate()
        if self.value() == "active":
            return queryset.filter(pk__in=LegalHold.objects.active(today=today).values("pk"))
        if self.value() == "released":
            return queryset.filter(released_at__isnull=False)
        if self.value() == "ended":
            return queryset.filter(released_at__isnull=True, ends_on__lt=today)
        return queryset


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ["customer", "reason", "ends_on"]

    def clean_ends_on(self) -> date | None:
        ends_on: date | None = self.cleaned_data.get("ends_on")
        if ends_on is not None and ends_on < timezone.localdate():
            raise ValidationError(_("A hold cannot end in the past."), code="ends_in_past")
        return ends_on


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    form = LegalHoldForm
    list_display = [
        "customer",
        "reason_display",
        "placed_at",
        "placed_by",
        "ends_on",
        "released_at",
        "active",
    ]
    list_filter = [LegalHoldStatusFilter]
    list_select_related = ["customer", "placed_by"]
    search_fields = ["customer__name", "=customer__id", "reason"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "placed_at"
    actions = ["release_holds"]
    list_per_page = 50
    record_fields = ("customer", "reason", "ends_on", "placed_at", "placed_by", "released_at", "released_by")

    def get_fields(self, request: HttpRequest, obj: LegalHold | None = None) -> Any:
        if obj is None:
            return ["customer", "reason", "ends_on"]
        return [*self.record_fields, "active"]

    def get_readonly_fields(self, request: HttpRequest, obj: LegalHold | None = None) -> Any:
        # A placed hold is never edited: it is released (an action), so the audit trail says so.
        return [*self.record_fields, "active"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: LegalHold | None = None) -> bool:
        if obj is not None and obj.is_active():
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: LegalHold, form: Any, change: bool) -> None:
        if change:
            return
        hold = services.legal_hold_place(
            customer=form.cleaned_data["customer"],
            reason=form.cleaned_data["reason"],
            ends_on=form.cleaned_data["ends_on"],
            placed_by=request.user,
        )
        # The admin goes on with `obj` (its message, redirect and LogEntry): make it the saved hold.
        for field in LegalHold._meta.concrete_fields:
            setattr(obj, field.attname, getattr(hold, field.attname))
        obj._state.adding = False

    @admin.display(description=_("reason"))
    def reason_display(self, hold: LegalHold) -> str:
        return hold.reason if len(hold.reason) <= 80 else f"{hold.reason[:79]}…"

    @admin.display(description=_("active"), boolean=True)
    def active(self, hold: LegalHold) -> bool:
        return hold.is_active()

    @admin.action(description=_("Release selected legal holds"), permissions=["change"])
    def release_holds(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> None:
        released = 0
        for hold in queryset.filter(released_at__isnull=True):
            services.legal_hold_release(hold=hold, released_by=request.user)
            released += 1
        self.message_user(
            request,
            ngettext("%d legal hold released.", "%d legal holds released.", released) % released,
            messages.SUCCESS if released else messages.WARNING,
        )


# --- Purge runs and the deletion log -----------------------------------------------------------


class CategoryFilter(admin.SimpleListFilter):
    """Data categories by name, from the purges themselves (no query for the choices)."""

    title = _("category")
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(key, _category_name(key)) for key in services.PURGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(category=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Proof of deletion: staff may look, nobody may add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PurgePreviewForm(forms.Form):
    as_of = forms.DateField(
        label=_("Purge on"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
        help_text=_("The day the nightly purge runs; from today up to %(years)s years ahead.")
        % {"years": PREVIEW_MAX_YEARS},
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_as_of(self) -> date:
        as_of: date = self.cleaned_data["as_of"]
        if as_of < self.today:
            raise ValidationError(_("Choose today or a later day."), code="past")
        latest = add_months(self.today, 12 * PREVIEW_MAX_YEARS)
        if as_of > latest:
            raise ValidationError(
                _("Choose a day no later than %(day)s.") % {"day": _day(latest)}, code="too_far"
            )
        return as_of


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "category_display",
        "status",
        "dry_run",
        "as_of",
        "deleted_display",
        "batches",
        "longest_batch_display",
        "duration_display",
        "errors_display",
    ]
    list_filter = [CategoryFilter, "status", "dry_run"]
    date_hierarchy = "started_at"
    list_per_page = 50
    fields = [
        "category",
        "as_of",
        "cutoff",
        "dry_run",
        "status",
        "deleted_display",
        "batches",
        "longest_batch_display",
        "started_at",
        "finished_at",
        "duration_display",
        "errors_display",
    ]
    readonly_fields = ["deleted_display", "longest_batch_display", "duration_display", "errors_display"]

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        preview = path(
            "preview/", self.admin_site.admin_view(self.preview_view), name="{}_{}_preview".format(*info)
        )
        # Before the defaults: their "<object_id>/" pattern would take "preview/" for an id.
        return [preview, *super().get_urls()]

    @admin.display(description=_("category"), ordering="category")
    def category_display(self, run: PurgeRun) -> str:
        return _category_name(run.category)

    @admin.display(description=_("deleted"))
    def deleted_display(self, run: PurgeRun) -> SafeString:
        deleted = sorted((model, count) for model, count in run.counts.items() if count)
        if not deleted:
            return format_html("{}", 0)
        lines = format_html_join("", "<br><small>{}: {}</small>", deleted)
        return format_html("<strong>{}</strong>{}", run.total_deleted, lines)

    @admin.display(description=_("longest batch"), ordering="longest_batch_seconds")
    def longest_batch_display(self, run: PurgeRun) -> str:
        return f"{run.longest_batch_seconds:.2f} s" if run.batches else "–"

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration_display(self, run: PurgeRun) -> str:
        seconds = run.duration_seconds
        return "–" if seconds is None else f"{seconds:.2f} s"

    @admin.display(description=_("errors"))
    def errors_display(self, run: PurgeRun) -> SafeString:
        if not run.errors:
            return format_html("{}", "–")
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((error,) for error in run.errors))
        )

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """What the purge of every category deletes on a chosen day (default today)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        form = PurgePreviewForm(request.GET if "as_of" in request.GET else {"as_of": today}, today=today)
        sections = []
        if form.is_valid():
            show_customers = request.user.has_perm("customers.view_customer")
            sections = [
                _preview_section(
                    category=key, as_of=form.cleaned_data["as_of"], show_customers=show_customers
                )
                for key in services.PURGES
            ]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("What the purge deletes"),
            "opts": self.opts,
            "form": form,
            "sections": sections,
            "as_of": form.cleaned_data.get("as_of") if form.is_valid() else None,
            "today": today,
        }
        return TemplateResponse(request, "admin/retention/purgerun/preview.html", context)


def _preview_section(*, category: str, as_of: date, show_customers: bool) -> dict[str, Any]:
    section: dict[str, Any] = {
        "key": category,
        "name": _category_name(category),
        "lines": [],
        "customers": [],
    }
    try:
        section["lines"] = services.purge_preview(category=category, as_of=as_of)
        if show_customers:
            section["customers"] = [
                {"customer": due, "url": reverse("admin:customers_customer_change", args=[due.pk])}
                for due in selectors.due_customers_preview(
                    category=category, as_of=as_of, limit=PREVIEW_CUSTOMERS
                )
            ]
    except Exception as error:  # a processor's connector may be down; the other categories still show
        section["error"] = f"{type(error).__name__}: {error}"
    section["total"] = sum(line.count for line in section["lines"])
    section["customers_truncated"] = len(section["customers"]) >= PREVIEW_CUSTOMERS
    return section


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
        return _category_name(entry.category)

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
