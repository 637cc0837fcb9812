"""Staff screens for the processors: the Processors page (each processor, what it holds, its last
check and its last deletion jobs, with "Check now"), and the read-only checks and deletion jobs.

Invariants:
- Writes go through `processors.services` (the check); the jobs and checks are read-only here.
- The Processors page asks no processor anything unless staff press "Check now".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from processors import registry
from processors import selectors as processor_selectors
from processors.google_workspace import GoogleWorkspaceConnector
from processors.models import ProcessorCheck, ProcessorJob, ProcessorOverview
from processors.services import check_processors, vault_confirm
from retention import data_map
from retention.admin import ReadOnlyAdmin


class VaultConfirmationForm(forms.Form):
    """Staff's word that no Google Vault retention rule or hold keeps customer mail (see
    `processors.google_workspace`), with the day they looked."""

    vault_confirmed_on = forms.DateField(
        label=_("Checked in Google Vault on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "Confirm that in Google Vault (Retention) no retention rule or hold keeps the mailboxes' "
            "customer mail beyond the policy: Vault keeps what it covers even after the portal deletes it."
        ),
    )

    def clean_vault_confirmed_on(self) -> Any:
        day = self.cleaned_data["vault_confirmed_on"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("The day you looked cannot be in the future."), code="future")
        return day


def _processor_section(connector: Any, *, latest: Any) -> dict[str, Any]:
    status = connector.status()
    processor = data_map.PROCESSORS.get(connector.processor)
    categories = []
    for key in connector.categories:
        category = data_map.category(key)
        external = [name for name, category_key in connector.export_categories.items() if category_key == key]
        categories.append({"category": category, "external_tables": external})
    return {
        "connector": connector,
        "status": status,
        "processor": processor,
        "categories": categories,
        "check": latest.get(connector.key),
        "jobs": processor_selectors.latest_jobs(connector.key) if connector.erases_customers else [],
        "outstanding": processor_selectors.outstanding_job_count(connector.key)
        if connector.erases_customers
        else 0,
        "vault": processor_selectors.latest_vault_confirmation()
        if isinstance(connector, GoogleWorkspaceConnector)
        else None,
        "asks_vault": isinstance(connector, GoogleWorkspaceConnector),
    }


@admin.register(ProcessorOverview)
class ProcessorOverviewAdmin(ReadOnlyAdmin):
    """The Processors page: each processor, what it holds, its last check and its last deletion
    jobs. Replaces the proxy's changelist; "Check now" runs the daily check at once."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("processors.view_processoroverview"))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        connectors = registry.all_connectors()
        vault_form = VaultConfirmationForm(initial={"vault_confirmed_on": timezone.localdate()})
        if request.method == "POST" and request.POST.get("action") == "vault_confirm":
            if not request.user.has_perm("processors.add_vaultconfirmation"):
                raise PermissionDenied
            vault_form = VaultConfirmationForm(request.POST)
            if vault_form.is_valid():
                vault_confirm(
                    confirmed_on=vault_form.cleaned_data["vault_confirmed_on"], confirmed_by=request.user
                )
                self.message_user(
                    request, gettext("Recorded: Google Vault keeps no customer mail."), messages.SUCCESS
                )
                return HttpResponseRedirect(request.path)
        elif request.method == "POST":
            checked = check_processors(connectors=[c for c in connectors if c.is_configured()])
            failing = [check for check in checked if not check.ok]
            self.message_user(
                request,
                ngettext(
                    "%(count)d processor checked; %(failing)d does not match the policy.",
                    "%(count)d processors checked; %(failing)d do not match the policy.",
                    len(checked),
                )
                % {"count": len(checked), "failing": len(failing)},
                messages.WARNING if failing else messages.SUCCESS,
            )
            return HttpResponseRedirect(request.path)
        latest = processor_selectors.latest_checks(connector.key for connector in connectors)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Processors"),
            "opts": self.opts,
            "sections": [_processor_section(connector, latest=latest) for connector in connectors],
            "any_configured": any(connector.is_configured() for connector in connectors),
            "stale_after_days": processor_selectors.CHECK_STALE_AFTER.days,
            "vault_form": vault_form,
            "may_confirm_vault": request.user.has_perm("processors.add_vaultconfirmation"),
            **(extra_context or {}),
        }
        status = 400 if vault_form.is_bound and vault_form.errors else 200
        return TemplateResponse(request, "admin/processors/processors.html", context, status=status)


@admin.register(ProcessorJob)
class ProcessorJobAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "processor",
        "kind",
        "customer_id",
        "status",
        "attempts",
        "external_id",
        "last_error",
        "finished_at",
    ]
    list_filter = ["processor", "kind", "status"]
    search_fields = ["=customer_id", "=external_id"]
    search_help_text = _("Customer id or the processor's job id")
    date_hierarchy = "created_at"
    list_per_page = 100


@admin.register(ProcessorCheck)
class ProcessorCheckAdmin(ReadOnlyAdmin):
    list_display = ["checked_at", "processor", "ok", "drift_display", "error"]
    list_filter = ["processor", "ok"]
    date_hierarchy = "checked_at"
    list_per_page = 100

    @admin.display(description=_("drift"))
    def drift_display(self, check: ProcessorCheck) -> SafeString:
        if not check.drift:
            return format_html("{}", "–")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {} ({} {})</li>",
                (
                    (item["setting"], item["actual"], gettext("expected"), item["expected"])
                    for item in check.drift
                ),
            ),
        )
