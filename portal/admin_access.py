"""Who may give whom a way in, in the admin.

Invariants:
- A customer's user (any user who is not staff) never gets a password: the admin's "set password"
  page answers 404 for one, even to the superuser (portal/doors.py: customers sign in by code).
- It is wired in `portal`, like the audit trail: `PortalAdminSite.register` puts
  `SignInAccessAdminMixin` in front of every ModelAdmin class registered on the site.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse

from portal.security import is_staff_account


class SignInAccessAdminMixin(ModelAdmin):
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Only UserAdmin routes this (admin/auth/user/<id>/password/); elsewhere it is never called.
        pk = unquote(id)
        target = get_user_model().objects.filter(pk=pk).first() if pk.isascii() and pk.isdigit() else None
        if target is None or not is_staff_account(target):
            raise Http404
        response: HttpResponse = super().user_change_password(request, id, form_url)  # type: ignore[misc]
        return response


def guarded(admin_class: type[ModelAdmin[Any]]) -> type[ModelAdmin[Any]]:
    """`admin_class` with SignInAccessAdminMixin in front of it (itself when it has it already)."""
    if issubclass(admin_class, SignInAccessAdminMixin):
        return admin_class
    metaclass: Any = type(admin_class)
    guarded_class: type[ModelAdmin[Any]] = metaclass(
        admin_class.__name__, (SignInAccessAdminMixin, admin_class), {"__module__": admin_class.__module__}
    )
    return guarded_class
