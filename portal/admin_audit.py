"""The audit trail of staff in the admin: every look at a record about a customer, every deletion.

Invariants:
- It is wired in `portal`, so no app's admin has to remember it: the portal's admin site
  (portal/admin_site.py, `PortalAdminSite.register`) puts `AuditedAdminMixin` in front of every
  ModelAdmin class as it is registered; tests hold every registered admin to it.
- Showing the change page of a record that reaches a customer (the customer itself, and every model
  with a chain of foreign keys to Customer: contacts, contracts, invoices, correspondence, access
  requests, holds, as retention.checks finds them; and the sign-in user of a customer) records
  CUSTOMER_VIEWED with the customer's id and the record's label and id. It is recorded when the
  page is shown: a GET, or a form shown again with its errors.
- Every deletion from the admin (the delete page, the "delete selected" action, and a row deleted
  in an inline) records MANUAL_DELETION per record, in the same transaction as the delete.
- Events hold ids only: the acting user, the customer, the model's label and the primary key.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from django.forms.models import BaseModelFormSet
from django.http import HttpRequest, HttpResponse

from audit.models import AuditEvent
from customers.models import Contact, Customer
from retention.checks import path_to_customer


def _is_user_model(model: type[models.Model]) -> bool:
    return model is get_user_model()


def _has_user_field(model: type[models.Model]) -> bool:
    """A sign-in detail of a user: allauth's e-mail addresses and authenticators, sessions."""
    try:
        field = model._meta.get_field("user")
    except FieldDoesNotExist:
        return False
    forward_key = field.concrete and (field.many_to_one or field.one_to_one)
    return bool(forward_key and field.related_model is get_user_model())


def holds_customer_data(model: type[models.Model]) -> bool:
    return path_to_customer(model) is not None or _is_user_model(model) or _has_user_field(model)


def _customer_of_user(user_id: Any) -> int | None:
    if user_id is None:
        return None
    customer_id = Customer.objects.filter(user_id=user_id).values_list("pk", flat=True).first()
    if customer_id is None:
        customer_id = Contact.objects.filter(user_id=user_id).values_list("customer_id", flat=True).first()
    return customer_id


def customer_id_of(obj: models.Model) -> int | None:
    """The id of the customer a record is about, or None (a staff user, a record whose customer
    has gone). Follows the foreign keys; the last step reads the id column, not the row."""
    model = type(obj)
    path = path_to_customer(model)
    if path is None:
        if _is_user_model(model):
            return _customer_of_user(obj.pk)
        if _has_user_field(model):
            return _customer_of_user(getattr(obj, "user_id", None))
        return None
    if not path:
        return int(obj.pk)
    target: Any = obj
    for name in path[:-1]:
        target = getattr(target, name)
        if target is None:
            return None
    customer_id = getattr(target, target._meta.get_field(path[-1]).attname)
    return int(customer_id) if customer_id is not None else None


def _customer_ids_of(queryset: models.QuerySet[Any]) -> dict[Any, int | None]:
    """Primary key → customer id for every row of `queryset`, in one query where a path exists."""
    model = queryset.model
    path = path_to_customer(model)
    if path is not None:
        return dict(queryset.values_list("pk", "__".join(path) or "pk"))
    if _is_user_model(model):
        return {pk: _customer_of_user(pk) for pk in queryset.values_list("pk", flat=True)}
    if _has_user_field(model):
        return {pk: _customer_of_user(user_id) for pk, user_id in queryset.values_list("pk", "user_id")}
    return dict.fromkeys(queryset.values_list("pk", flat=True))


def _deletion_event(
    request: HttpRequest, model: type[models.Model], pk: Any, customer_id: int | None
) -> AuditEvent:
    user = request.user
    return AuditEvent(
        kind=AuditEvent.Kind.MANUAL_DELETION,
        actor_id=user.pk if user.is_authenticated else None,
        customer_id=customer_id,
        object_type=model._meta.label,
        object_id=str(pk),
    )


class AuditedAdminMixin(ModelAdmin):
    """Records staff views of customer records and every deletion (see the module's invariants)."""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200 and holds_customer_data(self.model):
            shown = (getattr(response, "context_data", None) or {}).get("original")
            if isinstance(shown, models.Model):
                AuditEvent.record(
                    AuditEvent.Kind.CUSTOMER_VIEWED,
                    actor=request.user,
                    customer_id=customer_id_of(shown),
                    target=shown,
                )
        return response

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            _deletion_event(request, type(obj), obj.pk, customer_id_of(obj)).save()
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        with transaction.atomic():
            events = [
                _deletion_event(request, queryset.model, pk, customer_id)
                for pk, customer_id in _customer_ids_of(queryset).items()
            ]
            AuditEvent.objects.bulk_create(events)
            super().delete_queryset(request, queryset)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Rows ticked "delete" in an inline are deleted by formset.save(); note them first, while
        # they still have their primary keys. The admin runs this inside the change's transaction.
        if isinstance(formset, BaseModelFormSet):
            deleted = [f.instance for f in formset.deleted_forms if f.instance.pk is not None]
            AuditEvent.objects.bulk_create(
                [_deletion_event(request, type(obj), obj.pk, customer_id_of(obj)) for obj in deleted]
            )
        super().save_formset(request, form, formset, change)


def audited(admin_class: type[ModelAdmin[Any]]) -> type[ModelAdmin[Any]]:
    """`admin_class` with AuditedAdminMixin in front of it (itself when it has the mixin already).
    PortalAdminSite.register calls it for every ModelAdmin registered on the site."""
    if issubclass(admin_class, AuditedAdminMixin):
        return admin_class
    # The admin's own metaclass (forms.MediaDefiningClass) makes the subclass, as a class statement
    # would.
    metaclass: Any = type(admin_class)
    audited_class: type[ModelAdmin[Any]] = metaclass(
        f"Audited{admin_class.__name__}",
        (AuditedAdminMixin, admin_class),
        {"__module__": admin_class.__module__},
    )
    return audited_class
