"""Legal holds: staff place one on a customer (stopping every purge of them) and release it. Writes
go through `retention.services` (a hold is placed and released there, with its audit event); a
placed hold is never edited."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from retention import services
from retention.models import LegalHold


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
