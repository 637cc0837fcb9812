"""Every row about Alice is in her export, found from the model graph rather than from a list.

The models are the ones the data-map system check finds (`retention.checks.path_to_customer`: a
chain of foreign keys leads to Customer), and the ones that reach her through a user of hers (her
own sign-in and a contact's): a row is made in each, with made-up values of the right type, plus an
admin history entry about every one of them; then each row must be in data.json. A model added
later with a path to Customer gets its row here without anyone writing it down, and fails the test
until the data map exports it.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from access_requests.export import export_build
from access_requests.models import AccessRequest
from customers.models import Customer
from retention import data_map
from retention.checks import path_to, path_to_customer
from tests.access_requests.conftest import read_export
from tests.access_requests.test_export import as_written, exported_columns
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

USER_MODEL = "auth.User"

# Models that reach a user without being about the customer through that user, and why. Anything
# else that reaches a user is made for Alice's user and for her contact's, and must be exported.
NOT_ABOUT_THE_USER = {
    "admin.LogEntry": "its user is the employee who made the change; entries about her rows are "
    "made and checked below",
    "audit.AuditEvent": "its actor is an employee, or the customer acting on her own account, which "
    "the event records with her customer id (made and checked through that path)",
    "account.EmailConfirmation": "e-mail verification is off (ACCOUNT_EMAIL_VERIFICATION = none): "
    "the portal never makes one",
}


def customer_models() -> list[type[models.Model]]:
    """The models the data-map check holds to the data map: a path of foreign keys to Customer."""
    return [model for model in apps.get_models() if path_to_customer(model) is not None]


def user_models() -> list[type[models.Model]]:
    """The models that reach a user, but not the customer except through her user."""
    found = []
    for model in apps.get_models():
        path = path_to(model, USER_MODEL)
        if path is None or model._meta.label == USER_MODEL or model._meta.label in NOT_ABOUT_THE_USER:
            continue
        if path_to_customer(model) is None:
            found.append(model)
    return found


MADE = itertools.count(1)  # makes every made-up value unique


class RowMaker:
    """Makes a row of any model with values of each field's type; foreign keys to a model it has
    made a row of (the customer, her invoice, her user) point at that row."""

    def __init__(self, made: dict[str, models.Model]) -> None:
        self.made = made

    def row(self, model: type[models.Model], **given: Any) -> models.Model:
        values: dict[str, Any] = dict(given)
        for field in model._meta.concrete_fields:
            if field.name in values or field.attname in values:
                continue
            if field.is_relation:
                target = field.related_model
                assert isinstance(target, type)
                label = target._meta.label
                if label in self.made and target is not model:
                    values[field.name] = self.made[label]
                elif not field.null:
                    values[field.name] = self.made.get(label) or self.row(target)
                continue
            if isinstance(field, models.AutoField) or field.has_default() or field.null:
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                continue
            values[field.name] = self.value(field)
        return model._default_manager.create(**values)

    def value(self, field: models.Field[Any, Any]) -> Any:
        number = next(MADE)
        if field.choices:
            return field.flatchoices[0][0]
        if isinstance(field, models.EmailField):
            return f"made-{number}@example.no"
        if isinstance(field, models.UUIDField):
            return uuid.uuid4()
        if isinstance(field, models.GenericIPAddressField):
            return "192.0.2.1"
        if isinstance(field, models.CharField | models.TextField):
            text = f"{field.model._meta.model_name}-{field.name}-{number}"
            return text[-field.max_length :] if field.max_length else text
        if isinstance(field, models.BooleanField):
            return True
        if isinstance(field, models.DecimalField):
            return Decimal("12.50")
        if isinstance(field, models.IntegerField):
            return number
        if isinstance(field, models.DateTimeField):
            return timezone.now() - timedelta(minutes=number)
        if isinstance(field, models.DateField):
            return date(2025, 1, 1) + timedelta(days=number)
        if isinstance(field, models.JSONField):
            return {"made": number}
        if isinstance(field, models.BinaryField):
            return b"made"
        raise AssertionError(f"the row maker has no value for {field!r}: teach it the field's type")


def made_rows(alice: Customer) -> list[models.Model]:
    """A row in every model about Alice, through her and through her users and her contact's."""
    made: dict[str, models.Model] = {"customers.Customer": alice}
    maker = RowMaker(made)
    rows: list[models.Model] = [alice]
    # Parents first, so that a line is made for her invoice, not for an invoice of nobody's.
    pending = [model for model in customer_models() if model._meta.label not in made]
    while pending:
        model = next(
            candidate
            for candidate in pending
            if all(
                (field.related_model._meta.label in made or field.null or field.related_model is candidate)
                for field in candidate._meta.concrete_fields
                if field.is_relation
                and isinstance(field.related_model, type)
                and path_to_customer(field.related_model) is not None
            )
        )
        pending.remove(model)
        row = maker.row(model)
        made[model._meta.label] = row
        rows.append(row)
    contact = ContactFactory.create(customer=alice, name="Kari Kontakt", email="kari@example.no")
    contact.user = get_user_model().objects.create_user(username="kari-kontakt", email="kari@example.no")
    contact.save()
    rows.append(contact)
    assert alice.user is not None
    for user in (alice.user, contact.user):
        rows.append(user)
        for model in user_models():
            rows.append(RowMaker({USER_MODEL: user}).row(model))
    # The admin's history of every one of those rows.
    staff = get_user_model().objects.create_user(username="staff-member", is_staff=True)
    for row in list(rows):
        rows.append(
            LogEntry.objects.create(
                user=staff,
                content_type=ContentType.objects.get_for_model(type(row)),
                object_id=str(row.pk),
                object_repr=f"about {row._meta.label} {row.pk}",
                action_flag=CHANGE,
                change_message="[]",
            )
        )
    return rows


def missing_from(data: dict[str, Any], rows: list[models.Model]) -> list[str]:
    """The rows no table of data.json holds, each named by model and id."""
    exported: dict[str, list[dict[str, Any]]] = {}
    for category in data["categories"].values():
        for table in category["tables"]:
            exported.setdefault(table["name"], []).extend(table["rows"])
    tables_of = {table.model: table for _category, table in data_map.tables()}
    missing = []
    for row in rows:
        label = row._meta.label
        table = tables_of.get(label)
        if table is None:
            missing.append(f"{label} #{row.pk}: in no table of the data map")
            continue
        columns = exported_columns(table)
        [values] = (
            type(row)._default_manager.filter(pk=row.pk).values_list(*(lookup for _n, lookup in columns))
        )
        expected = {name: as_written(value) for (name, _lookup), value in zip(columns, values, strict=True)}
        if expected not in exported.get(label, []):
            missing.append(f"{label} #{row.pk}: not in data.json ({row})")
    return missing


@pytest.fixture
def alices_rows(alice: Customer) -> list[models.Model]:
    return made_rows(alice)


def build_export(alice: Customer) -> dict[str, Any]:
    # The request being answered is the one made for her above, if the graph has one.
    access_request = AccessRequest.objects.filter(customer=alice).first()
    assert access_request is not None, "access_requests.AccessRequest has no path to Customer any more"
    built = export_build(access_request=access_request)
    assert built is not None
    data = json.loads(read_export(built)["data.json"])
    # The request is in its own export as it was then: being prepared.
    AccessRequest.objects.filter(pk=built.pk).update(
        status=AccessRequest.Status.BUILDING, ready_at=None, expires_at=None
    )
    return data


def test_every_row_about_alice_in_every_model_is_in_her_export(
    alice: Customer, alices_rows: list[models.Model], export_storage_dir: Path
) -> None:
    labels = {row._meta.label for row in alices_rows}
    # The graph found what the issue named: a contact's sign-ins, the request, the audit trail.
    assert {"audit.UserSession", "access_requests.AccessRequest", "admin.LogEntry"} <= labels
    AccessRequest.objects.filter(customer=alice).update(identity_verification="Ringte, oppga kundenummer")
    data = build_export(alice)
    missing = missing_from(data, alices_rows)
    assert not missing, "\n".join(missing)


def test_the_check_names_a_model_the_data_map_leaves_out(
    alice: Customer,
    alices_rows: list[models.Model],
    export_storage_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test above would fail if a table went missing from the data map: leave one out."""
    categories = data_map.categories()

    def without_contact_sessions() -> tuple[data_map.Category, ...]:
        return tuple(
            data_map.Category(
                **{
                    **category.__dict__,
                    "tables": tuple(
                        table
                        for table in category.tables
                        if (table.model, table.customer_path)
                        != ("audit.UserSession", "user__contact__customer")
                    ),
                }
            )
            for category in categories
        )

    monkeypatch.setattr(data_map, "categories", without_contact_sessions)
    data = build_export(alice)
    missing = missing_from(data, alices_rows)
    # The contact's session, and the admin's history entry about it (which follows its row).
    assert [entry.split(" #")[0] for entry in missing] == ["audit.UserSession", "admin.LogEntry"], missing
