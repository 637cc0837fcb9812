"""Purge runs (read-only: the database refuses changing them anyway) and the preview of what the
purge takes on a given day."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retention import selectors, services
from retention.admin.common import CategoryFilter, ReadOnlyAdmin, category_name, day_text
from retention.models import PurgeRun
from retention.windows import add_months

# How far ahead the preview looks: an invoice issued today goes about six years from now
# (five years after the end of its financial year), so staff can watch it happen.
PREVIEW_MAX_YEARS = 6
# Due customers listed per category on the preview page; the counts cover all of them.
PREVIEW_CUSTOMERS = 25


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
                _("Choose a day no later than %(day)s.") % {"day": day_text(latest)}, code="too_far"
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
        return category_name(run.category)

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
        "name": category_name(category),
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
