"""The admin's history (django_admin_log) names what staff changed: `object_repr` is the customer's
or contact's name. It is personal data about the customer, so it is exported with her data while it
exists and goes with her customer account."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.db import models

from customers.models import Contact, Customer
from retention import data_map
from retention.models import DeletionLog
from retention.services import purge_all
from tests.factories import ContactFactory, ContractFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def _staff_edit(staff: User, *objects: models.Model) -> None:
    # What ModelAdmin.log_change writes when staff save a change form.
    for obj in objects:
        LogEntry.objects.log_actions(
            user_id=staff.pk,
            queryset=[obj],
            action_flag=CHANGE,
            change_message=[{"changed": {"fields": ["Phone"]}}],
            single_object=True,
        )


def _admin_log_table() -> tuple[data_map.Category, data_map.Table]:
    (found,) = [(category, table) for category, table in data_map.tables() if table.model == "admin.LogEntry"]
    return found


def test_the_admin_history_of_her_and_her_contacts_is_in_the_data_map_and_only_hers(
    alice: Customer, bob: Customer
) -> None:
    staff = User.objects.create_user(username="siri-support", is_staff=True)
    contact = ContactFactory.create(customer=alice, name="Kari Kontakt")
    _staff_edit(staff, alice, contact, bob)

    _category, table = _admin_log_table()
    rows = list(table.rows_for_customer(alice.pk).values_list("object_repr", flat=True))

    assert sorted(rows) == ["Alice Hansen", "Kari Kontakt"]


def test_the_admin_history_goes_with_the_customer_account_and_is_logged() -> None:
    staff = User.objects.create_user(username="siri-support", is_staff=True)
    former = CustomerFactory.create(name="Halvard Qxyzbrekke")
    ContractFactory.create(customer=former, started_on=date(2014, 1, 1), ended_on=date(2015, 1, 31))
    contact = ContactFactory.create(customer=former, name="Kari Qxyzbrekke")
    current = CustomerFactory.create(name="Bob Berg AS")
    ContractFactory.create(customer=current)
    _staff_edit(staff, former, contact, current)
    former_id, contact_id = former.pk, contact.pk

    purge_all()

    assert not Customer.objects.filter(pk=former_id).exists()
    assert not Contact.objects.filter(pk=contact_id).exists()
    assert list(LogEntry.objects.values_list("object_repr", flat=True)) == ["Bob Berg AS"]
    # One line for the history of the customer row, one for that of her contact.
    logged = DeletionLog.objects.filter(model="admin.LogEntry")
    assert sorted(logged.values_list("customer_id", "count", "category")) == [
        (former_id, 1, "customer_account"),
        (former_id, 1, "customer_account"),
    ]
