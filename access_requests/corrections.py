"""Correction on request (GDPR art. 16): the customer corrects her own details and her contacts'
on /my-data/details/.

Invariants:
- Only what the customer may correct herself: her name, phone and postal address, and her
  contacts' names, phones and roles. The addresses anyone signs in with stay with staff: changing
  one decides who reaches her data.
- Every changed record is audited in the same transaction, with the names of the changed fields
  (never their values) and the customer's own sign-in as the actor.
- Issued invoices keep their billing snapshot: they are accounting records (bokføringsloven), and
  the snapshot is what was invoiced; only invoices issued later carry the corrected details.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.db import transaction

from audit.models import AuditEvent
from customers.models import Contact, Customer

CUSTOMER_FIELDS = ("name", "phone", "street_address", "postal_code", "city")
CONTACT_FIELDS = ("name", "phone", "role")


class CustomerDetailsForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = CUSTOMER_FIELDS


class ContactDetailsForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = CONTACT_FIELDS


class HerContactsFormSet(forms.BaseModelFormSet):
    """Django's model formset accepts the id of any row of the model in its hidden id field (the
    field's choices are the whole table) and edits that row; here the choices are her contacts
    only, so another customer's id is an invalid form."""

    def add_fields(self, form: forms.ModelForm[Any], index: int | None) -> None:
        super().add_fields(form, index)
        id_field = form.fields["id"]
        assert isinstance(id_field, forms.ModelChoiceField)
        id_field.queryset = self.get_queryset()


ContactFormSet = forms.modelformset_factory(
    Contact, form=ContactDetailsForm, formset=HerContactsFormSet, extra=0, can_delete=False
)


def contact_formset(customer: Customer, data: Any = None) -> Any:
    """Her contacts only: an id of anyone else's contact in the posted data is an invalid form."""
    return ContactFormSet(
        data, queryset=Contact.objects.filter(customer=customer).order_by("pk"), prefix="contact"
    )


@transaction.atomic
def details_correct(
    *,
    customer: Customer,
    details: CustomerDetailsForm,
    contacts: Iterable[ContactDetailsForm],
    acting_user: Any,
) -> int:
    """Save the valid forms; one audit event per record that changed. Answers how many changed."""
    changed = 0
    for form, record in (
        (details, customer),
        *((contact_form, contact_form.instance) for contact_form in contacts),
    ):
        if form.instance.pk != record.pk or (
            isinstance(record, Contact) and record.customer_id != customer.pk
        ):
            raise ValueError("a form for another customer's record")
        if not form.has_changed():
            continue
        form.save()
        AuditEvent.record(
            AuditEvent.Kind.CORRECTED,
            actor=acting_user,
            customer_id=customer.pk,
            target=record,
            changed_fields=sorted(form.changed_data),
        )
        changed += 1
    return changed


__all__ = [
    "CONTACT_FIELDS",
    "CUSTOMER_FIELDS",
    "ContactDetailsForm",
    "CustomerDetailsForm",
    "contact_formset",
    "details_correct",
]
