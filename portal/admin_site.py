"""The portal's admin site: every ModelAdmin registered on it is audited, and staff sign in
through allauth. Installed as Django's default site (`PortalAdminConfig.default_site` in
portal/apps.py), so `admin.site` and `@admin.register` everywhere are this site.

Invariants:
- `register` puts `AuditedAdminMixin` (portal/admin_audit.py) in front of every ModelAdmin class
  registered here, at the moment it is registered: no registered screen escapes the audit trail,
  whichever app registers it and whenever.
- `register` also puts `SignInAccessAdminMixin` (portal/admin_access.py) in front: who may give
  whom a way in (a customer's user never gets a password here).
- Every changelist registered here pages without counting its whole table
  (`portal.admin_paging.configure`).
- Junk in a query string is a 400, never a 500 (portal/admin_parameters.py): every admin view is
  wrapped by `refusing_unstorable_text`, and `ParameterCheckedAdminMixin` is put in front of every
  ModelAdmin registered here, as the audit mixin is.
- /admin/login/ is allauth's password sign-in (`portal.security.StaffLoginView`), so its rate limits
  and two-factor step apply; Django's own admin login form is never shown. A user who is signed in
  already goes on as allauth's `secure_admin_login` decides (a customer is refused, staff go on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from allauth.account.decorators import secure_admin_login
from django.contrib.admin import AdminSite, ModelAdmin
from django.db.models import Model
from django.db.models.base import ModelBase
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from portal import admin_paging
from portal.admin_access import guarded
from portal.admin_audit import audited
from portal.admin_parameters import parameters_checked, refusing_unstorable_text
from portal.security import StaffLoginView


class PortalAdminSite(AdminSite):
    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[ModelAdmin[Any]] | None = None,
        **options: Any,
    ) -> None:
        # With options, Django subclasses the class it is given: the subclass is audited too.
        admin_class = parameters_checked(admin_class or ModelAdmin)
        super().register(model_or_iterable, guarded(audited(admin_class)), **options)
        models = [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        for model in models:
            admin_paging.configure(self._registry[model])

    def admin_view[View: Callable[..., HttpResponseBase]](self, view: View, cacheable: bool = False) -> View:
        # Inside the site's own wrapping: who is not signed in is sent to sign in before anything.
        return super().admin_view(refusing_unstorable_text(view), cacheable)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_authenticated:
            return secure_admin_login(super().login)(request, extra_context)
        return StaffLoginView.as_view(admin_site=self)(request)
