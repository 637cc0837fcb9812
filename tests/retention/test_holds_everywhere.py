"""A legal hold stops every purge of rows about its customer, not only the customer tables: the
audit trail, the admin's history, sessions, exports and processor jobs. And the database refuses
deleting any of them, raw SQL included, as it does for the customer tables.

The coverage test walks every table of the data map and every model with a path to Customer
(plus the rows about a customer that reach it by id only), gives the held customer a row in each,
and tries to delete it with raw SQL: a table nobody guards fails the test by name.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from access_requests.models import AccessRequest, ErasureRequest
from audit.models import AuditEvent, UserSession
from customers import services as customer_services
from customers.models import Customer, Payment
from processors.models import ProcessorJob
from retention.checks import path_to_customer
from retention.data_map import tables
from retention.models import AnalyticsIdentifier, LegalHold
from retention.services import legal_hold_place, purge_run
from retention.windows import add_months
from tests.access_requests.conftest import new_request
from tests.factories import ContactFactory, ContractFactory, CorrespondenceFactory, UserFactory

pytestmark = pytest.mark.django_db

# Rows about a customer that reach her by id, not by a foreign key (the model graph cannot find
# them): each names how to find the customer's rows.
BY_ID_ONLY = ("sessions.Session", "admin.LogEntry", "processors.ProcessorJob")


def _hold(customer: Customer) -> LegalHold:
    staff = User.objects.filter(is_staff=True).first() or UserFactory.create(username="siri", is_staff=True)
    return legal_hold_place(customer=customer, reason="Tvist om faktura", ends_on=None, placed_by=staff)


def _old_event(customer: Customer, *, months: int = 30) -> AuditEvent:
    return AuditEvent.objects.create(
        kind=AuditEvent.Kind.CUSTOMER_VIEWED,
        customer_id=customer.pk,
        created_at=timezone.make_aware(datetime.combine(add_months(timezone.localdate(), -months), time.min)),
    )


def _expired_session(user: User, key: str) -> Session:
    session = Session.objects.create(
        session_key=key, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    UserSession.objects.create(session=session, user=user)
    return session


def test_a_held_customers_audit_events_outlive_their_window_while_bobs_go(
    alice: Customer, bob: Customer
) -> None:
    alices = _old_event(alice)
    bobs = _old_event(bob)
    _hold(alice)

    run = purge_run(category="sessions_and_audit")

    assert run.counts["audit.AuditEvent"] == 1
    assert AuditEvent.objects.filter(pk=alices.pk).exists()
    assert not AuditEvent.objects.filter(pk=bobs.pk).exists()
    assert AuditEvent.objects.filter(customer_id=alice.pk, kind=AuditEvent.Kind.HOLD_PLACED).exists()


def test_once_the_hold_is_released_her_old_audit_events_go(alice: Customer) -> None:
    old = _old_event(alice)
    hold = _hold(alice)
    LegalHold.objects.filter(pk=hold.pk).update(released_at=timezone.now())

    purge_run(category="sessions_and_audit")

    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_a_held_customers_expired_sessions_stay_while_bobs_go(alice: Customer, bob: Customer) -> None:
    assert alice.user is not None and bob.user is not None
    _expired_session(alice.user, "a" * 32)
    _expired_session(bob.user, "b" * 32)
    _hold(alice)

    purge_run(category="sessions_and_audit")

    assert Session.objects.filter(session_key="a" * 32).exists()
    assert not Session.objects.filter(session_key="b" * 32).exists()


def test_a_held_customer_can_still_sign_out(alice: Customer) -> None:
    assert alice.user is not None
    session = Session.objects.create(
        session_key="c" * 32, session_data="", expire_date=timezone.now() + timedelta(hours=1)
    )
    UserSession.objects.create(session=session, user=alice.user)
    _hold(alice)

    Session.objects.filter(pk=session.pk).delete()  # what signing out does

    assert not UserSession.objects.filter(session_id="c" * 32).exists()


def test_a_held_customers_export_is_not_expired(
    alice: Customer, bob: Customer, export_storage_dir: Path
) -> None:
    storage = storages["default"]
    past = timezone.now() - timedelta(minutes=1)
    held = new_request(alice, status=AccessRequest.Status.READY, ready_at=past, expires_at=past)
    held.export_name = storage.save(f"exports/{held.pk}-token.zip", ContentFile(b"zip"))
    held.save()
    other = new_request(bob, status=AccessRequest.Status.READY, ready_at=past, expires_at=past)
    other.export_name = storage.save(f"exports/{other.pk}-token.zip", ContentFile(b"zip"))
    other.save()
    _hold(alice)

    purge_run(category="access_request_exports")

    held.refresh_from_db()
    other.refresh_from_db()
    assert held.status == AccessRequest.Status.READY and storage.exists(held.export_name)
    assert other.status == AccessRequest.Status.EXPIRED


# --- The database refuses it, for every table about the customer -----------------------------


def _world_of(customer: Customer) -> None:
    """A row about `customer` in every table that holds rows about a customer."""
    assert customer.user is not None
    EmailAddress.objects.create(user=customer.user, email=customer.email, verified=True, primary=True)
    contact_user = UserFactory.create(username=f"contact-{customer.pk}")
    EmailAddress.objects.create(user=contact_user, email=f"k{customer.pk}@example.no", verified=True)
    ContactFactory.create(customer=customer, portal_access=True, user=contact_user)
    for user in (customer.user, contact_user):
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={})
    contract = ContractFactory.create(customer=customer)
    invoice = customer_services.invoice_create(
        customer=customer,
        lines=[("Hosting", Decimal(1), Decimal("249.00"))],
        contract_id=contract.pk,
        issue_on=timezone.localdate() - timedelta(days=3),
    )
    Payment.objects.create(invoice=invoice, amount=Decimal("311.25"), paid_on=timezone.localdate())
    customer_services.invoice_create(customer=customer, lines=[("Utkast", Decimal(1), Decimal(10))])
    CorrespondenceFactory.create(customer=customer)
    AnalyticsIdentifier.objects.create(customer=customer, client_id=f"GA1.1.{customer.pk}.1")
    new_request(customer)
    _old_event(customer)
    _expired_session(customer.user, f"{customer.pk:0>32}")
    _expired_session(contact_user, f"{customer.pk:9>32}")
    LogEntry.objects.log_actions(
        user_id=UserFactory.create(username=f"staff-{customer.pk}", is_staff=True).pk,
        queryset=[customer],
        action_flag=CHANGE,
        change_message="[]",
        single_object=True,
    )
    ProcessorJob.objects.create(processor="zendesk", kind="tickets.delete", customer_id=customer.pk)
    ErasureRequest.objects.create(
        customer=customer, former_customer_id=customer.pk, status=ErasureRequest.Status.REJECTED
    )


def _rows_about(model: type[models.Model], customer: Customer) -> list[object]:
    label = model._meta.label
    for _category, table in tables():
        if table.model == label:
            return list(table.rows_for_customer(customer.pk).values_list("pk", flat=True))
    if label == "sessions.Session":
        return list(
            UserSession.objects.filter(
                models.Q(user__customer=customer) | models.Q(user__contact__customer=customer)
            ).values_list("session_id", flat=True)
        )
    if label == "processors.ProcessorJob":
        return list(ProcessorJob.objects.filter(customer_id=customer.pk).values_list("pk", flat=True))
    path = path_to_customer(model)
    assert path is not None, label
    return list(
        model._default_manager.filter(**{"__".join([*path, "pk"]) or "pk": customer.pk}).values_list(
            "pk", flat=True
        )
    )


def models_about_customers() -> list[type[models.Model]]:
    """Every data-map table, every model with a foreign-key path to Customer, and those by id."""
    found = {table.model for _category, table in tables()} | set(BY_ID_ONLY)
    found |= {model._meta.label for model in apps.get_models() if path_to_customer(model) is not None}
    return [apps.get_model(label) for label in sorted(found)]


def test_the_database_refuses_deleting_any_row_about_a_held_customer(alice: Customer, bob: Customer) -> None:
    _world_of(alice)
    _world_of(bob)
    _hold(alice)
    unguarded, empty = [], []
    for model in models_about_customers():
        pks = _rows_about(model, alice)
        if not pks:
            empty.append(model._meta.label)
            continue
        table, pk_column = model._meta.db_table, model._meta.pk.column
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE {pk_column} = ANY(%s)", [pks])
        except IntegrityError:
            continue
        unguarded.append(model._meta.label)
    assert empty == [], "give the held customer a row in these tables in _world_of()"
    assert unguarded == [], "deleting these rows of a held customer by raw SQL was not refused"


def test_the_same_raw_deletes_of_bobs_rows_are_not_refused(alice: Customer, bob: Customer) -> None:
    # The guard refuses only what is held: Bob's rows (his old audit event, his expired session,
    # the admin's history of him, his processor jobs) can go.
    _world_of(bob)
    _hold(alice)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM audit_auditevent"
            " WHERE customer_id = %s AND created_at < now() - interval '25 months'",
            [bob.pk],
        )
        assert cursor.rowcount == 1
        cursor.execute("DELETE FROM retention_processorjob WHERE customer_id = %s", [bob.pk])
        assert cursor.rowcount == 1
    assert LogEntry.objects.filter(object_id=str(bob.pk)).delete()[0] == 1
    assert Session.objects.filter(session_key=f"{bob.pk:0>32}").delete()[0] >= 1
