"""`manage.py seed_demo`: a realistic demo set in every relationship state, made once, the same every time."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import models, transaction
from django.db.models import Sum
from django.test import override_settings
from stdnum import luhn

from customers.demo import ACCOUNTING_YEARS, DEMO_PASSWORD, demo_customers
from customers.models import (
    Contact,
    Contract,
    Correspondence,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
)
from customers.relationship import RelationshipStatus
from customers.validators import validate_organisation_number

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
TODAY = date(2026, 3, 15)
STAFF_LOGINS = {"support": "Support", "billing": "Billing", "privacy-officer": "Privacy officer"}


# The production hasher costs ~0.4 s per login; the tests check passwords, not their cost.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(autouse=True)
def _a_development_checkout(settings: Any) -> None:
    # The suite runs with production settings; the demo set is for DEBUG on only.
    settings.DEBUG = True


def seed_demo(*, today: date = TODAY) -> str:
    out = io.StringIO()
    with time_machine.travel(
        datetime(today.year, today.month, today.day, 12, tzinfo=ZoneInfo("Europe/Oslo")), tick=False
    ):
        call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="class")
def demo_set_output(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """One demo set for a class of read-only tests, since seeding takes seconds. Each test still
    runs in its own savepoint; the whole set is rolled back when the class is done."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS, DEBUG=True),
        transaction.atomic(),
    ):
        yield seed_demo()
        transaction.set_rollback(True)


@pytest.fixture
def seeded(demo_set_output: str, db: None) -> str:
    return demo_set_output


def snapshot() -> dict[str, list[Any]]:
    """Every demo value except row ids and creation times, in an order that does not depend on ids."""

    def rows(model: type[models.Model], *fields: str, order_by: tuple[str, ...] = ()) -> list[Any]:
        return list(model.objects.order_by(*(order_by or fields)).values_list(*fields))

    return {
        "customers": rows(
            Customer,
            "name", "organisation_number", "email", "kind", "phone", "street_address", "postal_code", "city",
            "user__username",
        ),
        "contacts": rows(Contact, "customer__email", "name", "email", "phone", "role"),
        "contracts": rows(Contract, "customer__email", "service", "monthly_price", "started_on", "ended_on"),
        "invoices": rows(
            Invoice,
            "number", "kind", "credited_invoice__number", "customer__email", "contract__service",
            "contract__started_on", "issued_on", "due_on", "billing_name", "billing_organisation_number",
            "billing_address", "billing_email", "net_amount", "vat_amount", "total_amount",
        ),
        "lines": rows(
            InvoiceLine, "invoice__number", "description", "quantity", "unit_price", "vat_rate",
            order_by=("invoice__number", "pk"),
        ),
        "payments": rows(Payment, "invoice__number", "amount", "paid_on", "reference"),
        "correspondence": rows(
            Correspondence, "channel", "external_id", "customer__email", "subject", "opened_at",
            "last_message_at", "messages",
            order_by=("channel", "external_id"),
        ),
        "users": rows(User, "username", "email", "is_staff", "is_superuser", "is_active"),
        "memberships": rows(User.groups.through, "user__username", "group__name"),
        "sequence": rows(InvoiceSequence, "last_number"),
    }  # fmt: skip


def customers_by_group(*, today: date) -> dict[str, list[Customer]]:
    """The four groups the demo promises, read through the same SQL the admin and purges use."""
    groups: dict[str, list[Customer]] = {"active": [], "recent": [], "held": [], "expired": []}
    for customer in demo_customers().with_relationship(today=today):
        status, ended_on = customer.relationship_status, customer.relationship_ended_on
        years = [invoice.issued_on.year for invoice in customer.invoices.all() if invoice.issued_on]
        if status == RelationshipStatus.ACTIVE:
            groups["active"].append(customer)
        elif ended_on >= today - timedelta(days=92):
            groups["recent"].append(customer)
        elif any(year + ACCOUNTING_YEARS >= today.year for year in years):
            groups["held"].append(customer)
        else:
            groups["expired"].append(customer)
    return groups


def test_it_refuses_to_run_with_debug_off_and_creates_nothing(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Customer.objects.exists()
    assert not User.objects.exists()


def test_manage_py_exits_non_zero_with_one_clear_line_when_debug_is_off() -> None:
    environment = {**os.environ, "DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "CommandError: seed_demo loads demo data" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_run_loads_nothing_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    out = io.StringIO()
    call_command("seed_demo", "--if-debug", stdout=out)
    assert out.getvalue() == "DEBUG is off: no demo data loaded.\n"
    assert not Customer.objects.exists()


@pytest.mark.parametrize("today", [TODAY, date(2027, 1, 1), date(2028, 2, 29)])
def test_the_demo_set_has_customers_in_every_relationship_state(today: date) -> None:
    seed_demo(today=today)

    groups = customers_by_group(today=today)

    assert 50 <= demo_customers().count() <= 70
    assert {name: len(members) >= 5 for name, members in groups.items()} == dict.fromkeys(groups, True)
    # Persons and organisations, in the groups that matter most to the purge.
    for name in ("active", "recent"):
        assert {customer.kind for customer in groups[name]} == {
            Customer.Kind.PERSON,
            Customer.Kind.ORGANISATION,
        }
    # The held group keeps invoices for the accounting period; the expired group has nothing left to keep.
    assert all(customer.invoices.exists() for customer in groups["held"] + groups["expired"])
    assert all(
        customer.invoices.filter(issued_on__year__gte=today.year - ACCOUNTING_YEARS).exists()
        for customer in groups["held"]
    )
    assert not Invoice.objects.filter(
        customer__in=groups["expired"], issued_on__year__gte=today.year - ACCOUNTING_YEARS
    ).exists()


def test_two_fresh_runs_on_the_same_day_make_the_same_data() -> None:
    class Discard(Exception):
        pass

    with pytest.raises(Discard), transaction.atomic():
        seed_demo()
        first = snapshot()
        raise Discard

    assert not demo_customers().exists()
    seed_demo()
    assert snapshot() == first
    assert len(first["invoices"]) > 200


def test_an_existing_admin_user_is_left_alone() -> None:
    User.objects.create_user(username="admin", password="someone-elses-password")

    output = seed_demo()

    admin = User.objects.get(username="admin")
    assert admin.check_password("someone-elses-password") and not admin.is_superuser
    assert "superuser: everything in admin (existed already" in output


class TestOneDemoSet:
    """Read-only checks of one demo set seeded on `TODAY`."""

    def test_active_customers_have_open_ended_contracts_and_six_financial_years_of_invoices(
        self, seeded: str
    ) -> None:
        active = customers_by_group(today=TODAY)["active"]

        assert all(customer.contracts.filter(ended_on__isnull=True).exists() for customer in active)
        years = set(Invoice.objects.filter(customer__in=active).values_list("issued_on__year", flat=True))
        assert years == set(range(TODAY.year - ACCOUNTING_YEARS, TODAY.year + 1))

    def test_running_it_twice_changes_nothing(self, seeded: str) -> None:
        before = snapshot()

        output = seed_demo()

        assert snapshot() == before
        assert "already exists" in output

    def test_every_organisation_number_passes_the_check_digit(self, seeded: str) -> None:
        organisations = demo_customers().filter(kind=Customer.Kind.ORGANISATION)

        assert organisations.count() >= 20
        for number in organisations.values_list("organisation_number", flat=True):
            validate_organisation_number(number)
        assert not demo_customers().filter(kind=Customer.Kind.PERSON).exclude(organisation_number="").exists()

    def test_every_invoice_is_issued_with_a_number_a_billing_snapshot_and_its_totals(
        self, seeded: str
    ) -> None:
        invoices = Invoice.objects.filter(customer__in=demo_customers()).select_related("customer")

        assert not invoices.filter(number__isnull=True).exists()
        for invoice in invoices:
            totals = invoice.computed_totals()
            assert invoice.issued_on is not None
            assert invoice.billing_name == invoice.customer.name
            assert invoice.billing_email and invoice.billing_address
            assert invoice.billing_organisation_number == invoice.customer.organisation_number
            assert (invoice.net_amount, invoice.vat_amount, invoice.total_amount) == (
                totals.net,
                totals.vat,
                totals.total,
            )

    def test_invoice_numbers_grow_with_the_issue_date(self, seeded: str) -> None:
        dates = list(Invoice.objects.order_by("number").values_list("issued_on", flat=True))

        assert dates == sorted(dates)  # type: ignore[type-var]

    def test_credit_notes_cancel_their_invoice_which_is_then_not_paid(self, seeded: str) -> None:
        notes = Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).select_related("credited_invoice")

        assert notes.exists()
        for note in notes:
            credited = note.credited_invoice
            assert credited is not None and credited.issued_on is not None and note.issued_on is not None
            assert note.total_amount == -credited.total_amount
            assert note.issued_on >= credited.issued_on
            assert not credited.payments.exists()

    def test_payments_carry_the_invoices_kid_with_its_luhn_check_digit(self, seeded: str) -> None:
        payments = Payment.objects.filter(invoice__customer__in=demo_customers()).select_related("invoice")
        assert payments.exists()
        for payment in payments:
            assert (
                payment.reference
                == f"{payment.invoice.number}{luhn.calc_check_digit(str(payment.invoice.number))}"
            )
            assert luhn.is_valid(payment.reference)

    def test_payments_never_exceed_the_invoice_and_some_invoices_are_open(self, seeded: str) -> None:
        invoices = Invoice.objects.filter(kind=Invoice.Kind.INVOICE).annotate(paid=Sum("payments__amount"))

        assert Payment.objects.count() > 100
        assert not Payment.objects.filter(paid_on__gt=TODAY).exists()
        assert all((invoice.paid or Decimal(0)) <= invoice.total_amount for invoice in invoices)
        assert any(invoice.paid is None for invoice in invoices if invoice.credit_notes.count() == 0)

    def test_correspondence_holds_zendesk_and_email_threads_with_their_messages(self, seeded: str) -> None:
        threads = Correspondence.objects.filter(customer__in=demo_customers())

        assert set(threads.values_list("channel", flat=True)) == {
            Correspondence.Channel.ZENDESK,
            Correspondence.Channel.EMAIL,
        }
        for thread in threads:
            assert thread.messages
            assert all(set(message) == {"sent_at", "sender", "body"} for message in thread.messages)
            assert datetime.fromisoformat(thread.messages[0]["sent_at"]) == thread.opened_at
            assert datetime.fromisoformat(thread.messages[-1]["sent_at"]) == thread.last_message_at
        assert any(len(thread.messages) > 1 for thread in threads)

    def test_staff_logins_are_in_their_groups_and_the_admin_is_a_superuser(self, seeded: str) -> None:
        admin = User.objects.get(username="admin")
        assert admin.is_staff and admin.is_superuser and admin.check_password(DEMO_PASSWORD)

        for username, group_name in STAFF_LOGINS.items():
            user = User.objects.get(username=username)
            assert user.is_staff and not user.is_superuser
            assert list(user.groups.values_list("name", flat=True)) == [group_name]
            assert user.check_password(DEMO_PASSWORD)
        # Groups added by later migrations get a demo login too.
        assert all(group.user_set.filter(is_staff=True).exists() for group in Group.objects.all())

    def test_the_customer_login_belongs_to_an_active_demo_customer(self, seeded: str) -> None:
        user = User.objects.get(username="kunde")
        customer = Customer.objects.get(user=user)

        assert not user.is_staff and not user.has_usable_password()  # she signs in with a code
        assert customer.email.endswith("@demo.wphosting.example")
        assert customer.relationship(today=TODAY).status is RelationshipStatus.ACTIVE
        assert customer.invoices.exists()

    def test_the_output_lists_the_logins_the_counts_and_the_admin_url(self, seeded: str) -> None:
        for username in ("admin", "support", "billing", "privacy-officer"):
            assert f"{username}@demo.wphosting.example" in seeded
        assert DEMO_PASSWORD in seeded
        customer = User.objects.get(username="kunde")
        assert customer.email in seeded and "one-time code" in seeded
        assert "http://127.0.0.1:8000/admin/" in seeded
        assert "customers" in seeded and "invoices" in seeded and "ended within the last 3 months" in seeded
