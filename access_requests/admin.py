"""Staff screens for access requests: every request with its deadline, and the few things staff do
to one: register a request that came by e-mail, phone or letter, extend its deadline once, reject
it, or retry a failed build.

Invariants:
- Writes go through `access_requests.services`; this module only turns forms into those calls. A
  refusal (`AccessRequestRefused`) is shown on the form or as a message, never as an error page.
- A request's recorded fields are read-only here: the record says what happened, and the services
  are the only way to change what happens next. Nobody deletes a request in the admin; it goes with
  the customer's other data.
- The changelist loads its rows in a constant number of queries (customer through select_related;
  overdue and extended are computed from the row).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from access_requests import erasure, services
from access_requests.clock import can_extend, gdpr_extended_due_date
from access_requests.models import AccessRequest, ErasureRequest
from customers.models import Customer

# Not yet answered: no copy handed over and no rejection. These are the ones with a deadline to keep.
UNANSWERED = (AccessRequest.Status.RECEIVED, AccessRequest.Status.BUILDING, AccessRequest.Status.FAILED)
DUE_SOON_DAYS = 7


def _day(day: date | None) -> str:
    return date_format(day, "SHORT_DATE_FORMAT") if day else "–"


def is_overdue(access_request: AccessRequest, *, today: date) -> bool:
    return access_request.status in UNANSWERED and access_request.due_on < today


class DeadlineFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("overdue", _("Overdue")),
            ("due_soon", _("Due within %(days)s days") % {"days": DUE_SOON_DAYS}),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = timezone.localdate()
        # access_request_status_due_idx (status, due_on)
        if self.value() == "overdue":
            return queryset.filter(status__in=UNANSWERED, due_on__lt=today)
        if self.value() == "due_soon":
            return queryset.filter(
                status__in=UNANSWERED, due_on__gte=today, due_on__lte=today + timedelta(days=DUE_SOON_DAYS)
            )
        return queryset


# --- Forms -------------------------------------------------------------------------------------


class RegisterRequestForm(forms.Form):
    """A request that reached us outside the portal; the customer's identity must be checked first."""

    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.all())
    channel = forms.ChoiceField(
        label=_("Received through"),
        choices=[
            choice for choice in AccessRequest.Channel.choices if choice[0] != AccessRequest.Channel.PORTAL
        ],
    )
    identity_verification = forms.CharField(
        label=_("How identity was verified"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "E.g. 'Called back on the phone number in the customer record' or 'Replied from the e-mail "
            "address on the account'. Required: we must not hand one customer's data to someone else."
        ),
    )

    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The customers admin's search (name, e-mail, organisation number) behind a type-ahead box;
        # the widget needs the admin site, so it is set here, with the field's choices.
        customer = self.fields["customer"]
        assert isinstance(customer, forms.ModelChoiceField)
        customer.widget = AutocompleteSelect(AccessRequest._meta.get_field("customer"), admin_site)
        customer.widget.choices = customer.choices


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text=_("The customer receives this text by e-mail."),
    )


# --- The admin ---------------------------------------------------------------------------------


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "customer",
        "status",
        "received_at",
        "due_on",
        "overdue",
        "extended",
        "channel",
    ]
    list_filter = ["status", DeadlineFilter, "channel"]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__email", "customer__organisation_number"]
    search_help_text = _("Customer name, e-mail or organisation number")
    ordering = ["-received_at"]
    list_per_page = 50
    actions = ["retry_failed_builds"]
    fieldsets = [
        (None, {"fields": ["customer_link", "status", "channel", "identity_verification", "created_by"]}),
        (
            _("Deadline"),
            {"fields": ["received_at", "due_on", "extended_at", "extension_reason", "rejection_reason"]},
        ),
        (
            _("Export"),
            {
                "fields": [
                    "progress",
                    "build_attempts",
                    "build_heartbeat_at",
                    "failure_reason",
                    "ready_at",
                    "expires_at",
                    "downloaded_at",
                    "download_count",
                    "export_size",
                    "export_sha256",
                ]
            },
        ),
    ]

    # --- list ---

    @admin.display(description=_("reference"), ordering="pk")
    def reference(self, access_request: AccessRequest) -> str:
        return str(access_request.pk)[:8]

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, access_request: AccessRequest) -> bool:
        return is_overdue(access_request, today=timezone.localdate())

    @admin.display(description=_("extended"), boolean=True, ordering="extended_at")
    def extended(self, access_request: AccessRequest) -> bool:
        return access_request.is_extended

    @admin.display(description=_("customer"))
    def customer_link(self, access_request: AccessRequest) -> SafeString:
        url = reverse("admin:customers_customer_change", args=[access_request.customer_id])
        return format_html('<a href="{}">{}</a>', url, access_request.customer)

    # --- permissions: read-only records, changed only through the services ---

    def get_readonly_fields(self, request: HttpRequest, obj: AccessRequest | None = None) -> Any:
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AccessRequest, form: Any, change: bool) -> None:
        # Every field is read-only and the save buttons are hidden; a forged POST changes nothing.
        return

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: AccessRequest | None = None,
    ) -> HttpResponse:  # fmt: skip
        context.update(
            show_save=False,
            show_save_and_continue=False,
            show_save_and_add_another=False,
            show_delete_link=False,
            request_actions=self._actions_for(request, obj) if obj is not None else [],
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _actions_for(self, request: HttpRequest, obj: AccessRequest) -> list[dict[str, str]]:
        if not self.has_change_permission(request, obj):
            return []
        found = []
        if obj.is_open and can_extend(
            received_on=obj.received_on, already_extended=obj.is_extended, today=timezone.localdate()
        ):
            found.append({"url": self._url("extend", obj), "label": gettext("Extend the deadline")})
        if obj.status in (AccessRequest.Status.RECEIVED, AccessRequest.Status.FAILED):
            found.append({"url": self._url("reject", obj), "label": gettext("Reject")})
        if obj.status == AccessRequest.Status.FAILED:
            found.append({"url": self._url("retry", obj), "label": gettext("Retry the build")})
        return found

    # --- views ---

    def get_urls(self) -> list[URLPattern]:
        def view(function: Callable[..., HttpResponse], name: str) -> URLPattern:
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(function),
                name=f"access_requests_accessrequest_{name}",
            )

        # Before the defaults: their "<path:object_id>/" would take ".../extend/" for an id.
        return [
            view(self.extend_view, "extend"),
            view(self.reject_view, "reject"),
            view(self.retry_view, "retry"),
            *super().get_urls(),
        ]

    def _url(self, name: str, obj: AccessRequest) -> str:
        return reverse(f"admin:access_requests_accessrequest_{name}", args=[obj.pk])

    def _change_url(self, obj: AccessRequest) -> str:
        return reverse("admin:access_requests_accessrequest_change", args=[obj.pk])

    def _page(self, request: HttpRequest, template: str, context: dict[str, Any]) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/access_requests/accessrequest/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "has_view_permission": self.has_view_permission(request),
                **context,
            },
        )

    def _object_or_redirect(self, request: HttpRequest, object_id: str) -> AccessRequest | HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            self.message_user(request, gettext("There is no access request with that id."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:access_requests_accessrequest_changelist"))
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RegisterRequestForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            try:
                created = services.access_request_create(
                    customer=form.cleaned_data["customer"],
                    acting_user=request.user,
                    channel=form.cleaned_data["channel"],
                    identity_verification=form.cleaned_data["identity_verification"],
                )
            except services.AccessRequestRefused as refusal:
                form.add_error(None, refusal)
            else:
                self.log_addition(request, created, [{"added": {}}])
                self.message_user(
                    request,
                    gettext(
                        "The request is registered; the export is being prepared and the customer is told."
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._change_url(created))
        return self._page(
            request,
            "register.html",
            {"title": gettext("Register an access request"), "form": form, "media": self.media + form.media},
        )

    def _reason_view(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        template_title: str,
        explanation: Callable[[AccessRequest], str],
        act: Callable[[AccessRequest, str], AccessRequest],
        done: str,
    ) -> HttpResponse:
        found = self._object_or_redirect(request, object_id)
        if isinstance(found, HttpResponse):
            return found
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                act(found, form.cleaned_data["reason"])
            except services.AccessRequestRefused as refusal:
                form.add_error(None, refusal)
            else:
                self.log_change(request, found, done)
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(found))
        return self._page(
            request,
            "action.html",
            {
                "title": template_title,
                "explanation": explanation(found),
                "original": found,
                "form": form,
                "change_url": self._change_url(found),
            },
        )

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._reason_view(
            request,
            object_id,
            template_title=gettext("Extend the deadline"),
            explanation=lambda obj: (
                gettext(
                    "The deadline can be extended once, by two further months, while the first month runs. "
                    "The new deadline will be %(due)s. The customer is told why by e-mail."
                )
                % {"due": _day(gdpr_extended_due_date(obj.received_on))}
            ),
            act=lambda obj, reason: services.access_request_extend(
                access_request=obj, reason=reason, acting_user=request.user
            ),
            done=gettext("The deadline is extended and the customer is told why."),
        )

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._reason_view(
            request,
            object_id,
            template_title=gettext("Reject the request"),
            explanation=lambda obj: gettext(
                "Reject only a request that is manifestly unfounded or excessive, or when the requester's "
                "identity cannot be established (GDPR art. 12(5) and (6)). The customer is told why by "
                "e-mail, and of their right to complain to Datatilsynet."
            ),
            act=lambda obj, reason: services.access_request_reject(
                access_request=obj, reason=reason, acting_user=request.user
            ),
            done=gettext("The request is rejected and the customer is told why."),
        )

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        found = self._object_or_redirect(request, object_id)
        if isinstance(found, HttpResponse):
            return found
        error = ""
        if request.method == "POST":
            try:
                services.access_request_retry(access_request=found, acting_user=request.user)
            except services.AccessRequestRefused as refusal:
                error = " ".join(refusal.messages)
            else:
                done = gettext("The build is queued again.")
                self.log_change(request, found, done)
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(found))
        return self._page(
            request,
            "action.html",
            {
                "title": gettext("Retry the build"),
                "explanation": gettext(
                    "The export is built again from the start; the customer is told when it is ready."
                ),
                "original": found,
                "error": error,
                "change_url": self._change_url(found),
            },
        )

    @admin.action(description=_("Retry the failed builds of the selected requests"), permissions=["change"])
    def retry_failed_builds(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> None:
        retried, refused = 0, []
        for access_request in queryset.filter(status=AccessRequest.Status.FAILED):
            try:
                services.access_request_retry(access_request=access_request, acting_user=request.user)
            except services.AccessRequestRefused as refusal:
                refused.append(f"{str(access_request.pk)[:8]}: {' '.join(refusal.messages)}")
            else:
                retried += 1
        self.message_user(
            request,
            ngettext("%d build queued again.", "%d builds queued again.", retried) % retried,
            messages.SUCCESS if retried else messages.WARNING,
        )
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AccessRequest], search_term: str
    ) -> tuple[QuerySet[AccessRequest], bool]:
        # An organisation number is often typed with spaces ("923 456 789").
        digits = search_term.replace(" ", "")
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if digits.isdigit() and digits != search_term:
            found |= queryset.filter(Q(customer__organisation_number__startswith=digits))
        return found, may_have_duplicates


# --- Erasure requests (GDPR art. 17), beside the access requests, on the same clock ------------


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    """Erasure requests: approve (the purges run for her now), reject with a reason, or extend the
    deadline once. Read-only otherwise, as the access requests; writes through
    `access_requests.erasure`, whose refusals show on the form."""

    list_display = ["reference", "customer", "status", "received_at", "due_on", "overdue", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["customer"]
    search_fields = ["=former_customer_id", "customer__name", "customer__email"]
    search_help_text = _("Customer id, name or e-mail")
    ordering = ["-asked_at"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["customer", "former_customer_id", "status", "asked_at"]}),
        (
            _("Deadline"),
            {"fields": ["received_at", "due_on", "extended_at", "extension_reason", "rejection_reason"]},
        ),
        (
            _("Erasure"),
            {"fields": ["decided_by", "decided_at", "attempts", "last_error", "finished_at", "receipt"]},
        ),
    ]

    @admin.display(description=_("reference"), ordering="pk")
    def reference(self, erasure_request: ErasureRequest) -> str:
        return str(erasure_request.pk)[:8]

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, erasure_request: ErasureRequest) -> bool:
        return erasure_request.is_overdue()

    def get_readonly_fields(self, request: HttpRequest, obj: ErasureRequest | None = None) -> Any:
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the customer asks, signed in and with her code

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ErasureRequest, form: Any, change: bool) -> None:
        return

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: ErasureRequest | None = None,
    ) -> HttpResponse:  # fmt: skip
        actions = []
        if obj is not None and self.has_change_permission(request, obj):
            if obj.status == ErasureRequest.Status.RECEIVED:
                actions.append({"url": self._url("approve", obj), "label": gettext("Approve: delete now")})
                if obj.received_at and can_extend(
                    received_on=timezone.localdate(obj.received_at),
                    already_extended=obj.is_extended,
                    today=timezone.localdate(),
                ):
                    actions.append({"url": self._url("extend", obj), "label": gettext("Extend the deadline")})
            if obj.status in (ErasureRequest.Status.AWAITING_CODE, ErasureRequest.Status.RECEIVED):
                actions.append({"url": self._url("reject", obj), "label": gettext("Reject")})
        context.update(
            show_save=False,
            show_save_and_continue=False,
            show_save_and_add_another=False,
            show_delete_link=False,
            request_actions=actions,
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        def view(function: Callable[..., HttpResponse], name: str) -> URLPattern:
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(function),
                name=f"access_requests_erasurerequest_{name}",
            )

        return [
            view(self.approve_view, "approve"),
            view(self.reject_view, "reject"),
            view(self.extend_view, "extend"),
            *super().get_urls(),
        ]

    def _url(self, name: str, obj: ErasureRequest) -> str:
        return reverse(f"admin:access_requests_erasurerequest_{name}", args=[obj.pk])

    def _act(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        title: str,
        explanation: str,
        act: Callable[[ErasureRequest, str], Any],
        done: str,
        with_reason: bool,
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            self.message_user(request, gettext("There is no erasure request with that id."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:access_requests_erasurerequest_changelist"))
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = reverse("admin:access_requests_erasurerequest_change", args=[obj.pk])
        form = ReasonForm(request.POST or None) if with_reason else None
        error = ""
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                act(obj, form.cleaned_data["reason"] if form is not None else "")
            except erasure.ErasureRefused as refused:
                error = refused.message
            else:
                self.log_change(request, obj, done)
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(
            request,
            "admin/access_requests/accessrequest/action.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "has_view_permission": self.has_view_permission(request),
                "title": title,
                "explanation": explanation,
                "original": obj,
                "form": form,
                "error": error,
                "change_url": change_url,
            },
            status=400 if error else 200,
        )

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._act(
            request,
            object_id,
            title=gettext("Approve: delete now"),
            explanation=gettext(
                "The purges run for this customer now, her window counting as closed: her data at the "
                "processors, her copies, then her account. Issued invoices stay until the Accounting "
                "Act's period ends. She receives the receipt by e-mail."
            ),
            act=lambda obj, _reason: erasure.erasure_approve(erasure_request=obj, decided_by=request.user),
            done=gettext("Approved: the customer's data is being deleted."),
            with_reason=False,
        )

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._act(
            request,
            object_id,
            title=gettext("Reject the request"),
            explanation=gettext(
                "Reject when the data must be kept (GDPR art. 17(3): a legal obligation, or a legal "
                "claim), or the request is manifestly unfounded. The customer is told why by e-mail, and "
                "of her right to complain to Datatilsynet."
            ),
            act=lambda obj, reason: erasure.erasure_reject(
                erasure_request=obj, decided_by=request.user, reason=reason
            ),
            done=gettext("The request is rejected and the customer is told why."),
            with_reason=True,
        )

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._act(
            request,
            object_id,
            title=gettext("Extend the deadline"),
            explanation=gettext(
                "The deadline can be extended once, by two further months, while the first month runs."
            ),
            act=lambda obj, reason: erasure.erasure_extend(
                erasure_request=obj, decided_by=request.user, reason=reason
            ),
            done=gettext("The deadline is extended."),
            with_reason=True,
        )
