"""The preview is the run: for any customer history and any day, the dry run's numbers per table
are the rows the real purge of that day deletes, cascades included.

Hypothesis builds small histories (contacts with and without portal access, their sign-ins and
sessions, drafts, issued invoices and credit notes, late payments, correspondence, holds placed,
released and ended, the admin's history, audit events), dated around month ends, year ends and
leap days near the windows of the day it picks. It takes the preview for that day, runs every
purge that day (time-shifted with time-machine; only days before the real today, since the
database's triggers count from its own clock), and compares the preview with the rows each table
lost, counted from the database, not from what the purge reports. Each example runs in a
savepoint that is rolled back, so the database is reset once per example.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import models, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access_requests.models import AccessRequest
from audit.models import AuditEvent, UserSession
from customers import services as customer_services
from customers.models import (
    Contact,
    Contract,
    Correspondence,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
)
from retention.models import AnalyticsIdentifier, LegalHold
from retention.services import night_preview, purge_all
from retention.windows import add_months
from tests.factories import CorrespondenceFactory, PersonCustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

OSLO = ZoneInfo("Europe/Oslo")
TABLES: tuple[type[models.Model], ...] = (
    Customer,
    Contact,
    Contract,
    Invoice,
    InvoiceLine,
    Payment,
    Correspondence,
    LegalHold,
    AnalyticsIdentifier,
    AccessRequest,
    User,
    EmailAddress,
    Session,
    UserSession,
    AuditEvent,
    LogEntry,
)

# Purge days: month ends, leap days, year starts, all before the real today.
DAYS = st.sampled_from(
    [
        date(2024, 2, 29),
        date(2024, 3, 1),
        date(2024, 5, 31),
        date(2024, 6, 1),
        date(2024, 12, 31),
        date(2025, 1, 1),
        date(2025, 2, 28),
        date(2025, 3, 1),
        date(2025, 5, 29),
        date(2025, 11, 30),
        date(2026, 1, 1),
        date(2026, 2, 28),
        date(2026, 5, 31),
        date(2026, 6, 1),
    ]
)
# Offsets in days from the edge of a window (the day's cutoff), either side of it.
NEAR = st.integers(min_value=-3, max_value=3)


@dataclass(frozen=True)
class ContactPlan:
    portal_access: bool
    with_user: bool


@dataclass(frozen=True)
class InvoicePlan:
    years_back: int  # issued this many financial years before the purge day's year
    month_day: tuple[int, int]
    credit_note: bool
    late_payment: bool
    to_contract: bool


@dataclass(frozen=True)
class CustomerPlan:
    contract_ends: tuple[int | None, ...]  # days from the customer-data cutoff; None: open
    created_offset: int  # for a customer without contracts: days from the cutoff
    own_user: bool
    contacts: tuple[ContactPlan, ...]
    drafts: int
    invoices: tuple[InvoicePlan, ...]
    correspondence: bool
    hold: str  # none | active | released | ended
    expired_session: bool
    analytics_id: bool
    access_request: bool
    admin_edit: bool
    old_audit_event: bool


invoices = st.builds(
    InvoicePlan,
    years_back=st.integers(min_value=4, max_value=7),
    month_day=st.sampled_from([(1, 1), (2, 29), (6, 30), (12, 31)]),
    credit_note=st.booleans(),
    late_payment=st.booleans(),
    to_contract=st.booleans(),
)
customers = st.builds(
    CustomerPlan,
    contract_ends=st.lists(st.one_of(st.none(), NEAR), max_size=2).map(tuple),
    created_offset=NEAR,
    own_user=st.booleans(),
    contacts=st.lists(st.builds(ContactPlan, st.booleans(), st.booleans()), max_size=2).map(tuple),
    drafts=st.integers(min_value=0, max_value=1),
    invoices=st.lists(invoices, max_size=2).map(tuple),
    correspondence=st.booleans(),
    hold=st.sampled_from(["none", "none", "active", "released", "ended"]),
    expired_session=st.booleans(),
    analytics_id=st.booleans(),
    access_request=st.booleans(),
    admin_edit=st.booleans(),
    old_audit_event=st.booleans(),
)


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12, 0), tzinfo=OSLO)


def _issued_on(day: date, plan: InvoicePlan) -> date:
    year = day.year - plan.years_back
    month, month_day = plan.month_day
    if (month, month_day) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        month_day = 28
    return date(year, month, month_day)


def _build(plan: CustomerPlan, *, day: date, staff: User) -> None:
    cutoff = add_months(day, -3)  # relationships that ended before this are past the window
    customer = PersonCustomerFactory.create(created_at=_at(cutoff + timedelta(days=plan.created_offset)))
    users = []
    if plan.own_user:
        customer.user = UserFactory.create()
        customer.save(update_fields=["user"])
        users.append(customer.user)
    contracts = []
    for offset in plan.contract_ends:
        ended_on = None if offset is None else cutoff + timedelta(days=offset)
        started_on = date(day.year - 8, 1, 1)
        contracts.append(
            Contract.objects.create(
                customer=customer, service="support", monthly_price=Decimal(99), started_on=started_on,
                ended_on=ended_on,
            )
        )  # fmt: skip
    for contact_plan in plan.contacts:
        user = UserFactory.create() if contact_plan.with_user else None
        Contact.objects.create(
            customer=customer, name="Kontakt", portal_access=contact_plan.portal_access, user=user
        )
        if user is not None:
            users.append(user)
    for user in users:
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        if plan.expired_session:
            session = Session.objects.create(
                session_key=f"s{user.pk:031d}", session_data="", expire_date=_at(day - timedelta(days=2))
            )
            UserSession.objects.create(session=session, user=user)
    for _draft in range(plan.drafts):
        customer_services.invoice_create(customer=customer, lines=[("Utkast", Decimal(1), Decimal(10))])
    for invoice_plan in plan.invoices:
        issued_on = _issued_on(day, invoice_plan)
        invoice = customer_services.invoice_create(
            customer=customer,
            lines=[("Hosting", Decimal(1), Decimal("249.00"))],
            contract_id=contracts[0].pk if contracts and invoice_plan.to_contract else None,
            issue_on=issued_on,
        )
        if invoice_plan.credit_note:
            customer_services.credit_note_create(invoice=invoice, issued_on=issued_on + timedelta(days=20))
        if invoice_plan.late_payment:
            customer_services.payment_register(
                invoice=invoice, amount=Decimal("311.25"), paid_on=date(issued_on.year + 1, 1, 10)
            )
    if plan.correspondence:
        CorrespondenceFactory.create(customer=customer)
    if plan.analytics_id:
        AnalyticsIdentifier.objects.create(customer=customer, client_id=f"GA1.1.{customer.pk}.7")
    if plan.access_request:
        AccessRequest.objects.create(customer=customer, received_at=_at(cutoff), due_on=cutoff)
    if plan.admin_edit:
        LogEntry.objects.log_actions(
            user_id=staff.pk, queryset=[customer], action_flag=CHANGE, change_message="[]", single_object=True
        )
    if plan.old_audit_event:
        AuditEvent.objects.create(
            kind=AuditEvent.Kind.CUSTOMER_VIEWED,
            customer_id=customer.pk,
            created_at=_at(add_months(day, -24) + timedelta(days=plan.created_offset)),
        )
    if plan.hold != "none":
        hold = LegalHold.objects.create(
            customer=customer,
            reason="Tvist",
            ends_on=day - timedelta(days=1) if plan.hold == "ended" else None,
        )
        if plan.hold == "released":
            LegalHold.objects.filter(pk=hold.pk).update(released_at=_at(day - timedelta(days=1)))


def _rows() -> Counter[str]:
    return Counter({model._meta.label: model._default_manager.count() for model in TABLES})


class _Rollback(Exception):
    pass


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(day=DAYS, history=st.lists(customers, min_size=1, max_size=3), earlier_night=st.booleans())
def test_the_preview_of_a_day_is_what_the_purge_of_that_day_deletes(
    day: date, history: list[CustomerPlan], earlier_night: bool
) -> None:
    try:
        with transaction.atomic():
            with time_machine.travel(_at(day - timedelta(days=400)), tick=False):
                staff = UserFactory.create(is_staff=True)
                for plan in history:
                    _build(plan, day=day, staff=staff)
                if earlier_night:  # some records outlive their customers: her row went a year ago
                    purge_all()
            with time_machine.travel(datetime.combine(day, time(3, 0), tzinfo=OSLO), tick=False):
                preview: Counter[str] = Counter()
                for lines in night_preview(as_of=day).values():
                    for line in lines:
                        preview[line.model] += line.count
                before = _rows()
                runs = purge_all()
                after = _rows()
            assert all(run.status == "finished" for run in runs), [run.errors for run in runs]
            deleted = {label: before[label] - after[label] for label in before}
            previewed = {label: preview.get(label, 0) for label in before}
            assert previewed == deleted
            reported: Counter[str] = Counter()
            for run in runs:
                reported.update(run.counts)
            assert {label: reported.get(label, 0) for label in before} == deleted
            raise _Rollback
    except _Rollback:
        pass
