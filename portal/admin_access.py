"""Who may give whom a way in, in the admin.

Invariants:
- Letting someone sign in as a customer is a privileged act of a named employee: giving a contact
  portal access, moving a contact with access to another customer, or changing the address a
  customer (or a contact with access) signs in with,
  needs `customers.grant_portal_access` (the Privacy officer group: it may see everything the
  portal shows the customer). Without it those fields are read-only on every screen and inline,
  and a save that changes them anyway is refused (403) before anything is written.
- The permission opens those fields and nothing else: a holder without the model's own change
  permission (the Privacy officer) may change a customer's or contact's sign-in fields, with every
  other field read-only.
- Each such change is recorded in the audit trail as the employee's act (PORTAL_ACCESS_GRANTED,
  SIGN_IN_ADDRESS_CHANGED), in the transaction of the change. What the change does to the
  customer's sessions and mailboxes is portal/sign_in_addresses.py's.
- The user a customer or contact signs in as is made by the portal (portal/accounts.py) and is
  never chosen by hand: the `user` fields are read-only for everyone.
- A customer's user (any user who is not staff) never gets a password: the admin's "set password"
  page answers 404 for one, even to the superuser (portal/doors.py: customers sign in by code).
- It is wired in `portal`, like the audit trail: `PortalAdminSite.register` puts
  `SignInAccessAdminMixin` in front of every ModelAdmin class registered on the site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models
from django.forms import BaseForm
from django.forms.models import BaseModelFormSet
from django.http import Http404, HttpRequest, HttpResponse

from audit.models import AuditEvent
from customers.models import Contact, Customer
from portal.admin_audit import customer_id_of
from portal.security import is_staff_account

GRANT_PORTAL_ACCESS = "customers.grant_portal_access"


@dataclass(frozen=True)
class SignInFields:
    """The fields of a model that decide who signs in as its records."""

    model: type[models.Model]
    address: str  # the e-mail address it signs in with
    access: str | None  # the switch that lets it sign in at all (None: always on)
    owner: str | None = None  # whose data it sees when it signs in (a contact's customer)
    user: str = "user"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.address, self.access, self.owner, self.user) if name)

    @property
    def granting(self) -> set[str]:
        """The fields only an employee who may grant portal access may change."""
        return {name for name in (self.address, self.access, self.owner) if name}

    def locked(self, *, may_grant: bool, obj: Any) -> list[str]:
        """The fields read-only for this employee on this record (None: a new one, or an inline)."""
        locked = [self.user]
        if not may_grant:
            if self.access:
                locked.append(self.access)
            if obj is not None and (self.access is None or getattr(obj, self.access)):
                locked.append(self.address)
                if self.owner:
                    locked.append(self.owner)  # moving her to another customer shows her its data
        return locked

    def changes(self, obj: Any, form: BaseForm, *, adding: bool) -> list[AuditEvent.Kind]:
        """What saving `form` onto `obj` (its new values already set) does to who signs in."""
        changed = set(form.changed_data)
        kinds: list[AuditEvent.Kind] = []
        had_access = self.access is None or bool(form.initial.get(self.access, False))
        has_access = self.access is None or bool(getattr(obj, self.access))
        if self.access and self.access in changed and has_access:
            kinds.append(AuditEvent.Kind.PORTAL_ACCESS_GRANTED)
        elif self.access is None and adding:
            pass  # a new customer: nobody signed in through her address yet
        elif self.address in changed and had_access and has_access and not adding:
            kinds.append(AuditEvent.Kind.SIGN_IN_ADDRESS_CHANGED)
        elif self.owner and self.owner in changed and had_access and has_access and not adding:
            kinds.append(AuditEvent.Kind.PORTAL_ACCESS_GRANTED)
        if self.user in changed:
            kinds.append(AuditEvent.Kind.PORTAL_ACCESS_GRANTED)
        return kinds


SIGN_IN_FIELDS: dict[type[models.Model], SignInFields] = {
    Customer: SignInFields(Customer, address="email", access=None),
    Contact: SignInFields(Contact, address="email", access="portal_access", owner="customer"),
}


def may_grant_portal_access(user: Any) -> bool:
    return bool(user.has_perm(GRANT_PORTAL_ACCESS))


def _with(fields: Sequence[str], added: Sequence[str]) -> list[str]:
    return [*fields, *(name for name in added if name not in fields)]


class SignInAccessAdminMixin(ModelAdmin):
    def _changes_only_who_signs_in(self, request: HttpRequest, obj: Any = None) -> bool:
        """The employee may change this record only because they may grant portal access."""
        return (
            self.model in SIGN_IN_FIELDS
            and may_grant_portal_access(request.user)
            and not super().has_change_permission(request, obj)
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) or self._changes_only_who_signs_in(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        rules = SIGN_IN_FIELDS.get(self.model)
        if rules is None:
            return fields
        fields = _with(fields, rules.locked(may_grant=may_grant_portal_access(request.user), obj=obj))
        if self._changes_only_who_signs_in(request, obj):
            opened = rules.granting
            editable = [
                field.name
                for field in self.model._meta.concrete_fields
                if field.editable and not field.primary_key and field.name not in opened
            ]
            fields = _with(fields, editable)
        return fields

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        inlines = super().get_inline_instances(request, obj)
        may_grant = may_grant_portal_access(request.user)
        for inline in inlines:
            rules = SIGN_IN_FIELDS.get(inline.model)
            if rules is not None:
                # One instance per request: setting the attribute changes this request's only.
                locked = rules.locked(may_grant=may_grant, obj=None)
                setattr(inline, "readonly_fields", _with(list(inline.readonly_fields), locked))  # noqa: B010
        return inlines

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        kinds = self._access_changes(request, obj, form, adding=not change)
        super().save_model(request, obj, form, change)
        self._record(request, obj, kinds)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        pending: list[tuple[Any, list[AuditEvent.Kind]]] = []
        if isinstance(formset, BaseModelFormSet):
            deleted = set(formset.deleted_forms)
            for row in formset.forms:
                if row in deleted or not row.has_changed():
                    continue
                adding = row.instance._state.adding
                pending.append(
                    (row.instance, self._access_changes(request, row.instance, row, adding=adding))
                )
        super().save_formset(request, form, formset, change)
        for obj, kinds in pending:
            self._record(request, obj, kinds)

    def _access_changes(
        self, request: HttpRequest, obj: Any, form: BaseForm, *, adding: bool
    ) -> list[AuditEvent.Kind]:
        rules = SIGN_IN_FIELDS.get(type(obj))
        if rules is None:
            return []
        kinds = rules.changes(obj, form, adding=adding)
        if kinds and not may_grant_portal_access(request.user):
            # The admin runs the save in one transaction: nothing of this change is written.
            raise PermissionDenied
        return kinds

    def _record(self, request: HttpRequest, obj: Any, kinds: list[AuditEvent.Kind]) -> None:
        for kind in kinds:
            AuditEvent.record(kind, actor=request.user, customer_id=customer_id_of(obj), target=obj)

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
