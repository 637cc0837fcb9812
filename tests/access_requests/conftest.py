"""Fixtures for the export pipeline and the staff side: Alice with data in every category, Bob with
data of his own that must never reach her export, an export storage of the test's own, and Celery
running tasks in-process.

Nothing here is autouse: the customer-side tests in this directory bring their own fixtures
(tests/access_requests/portal_fixtures.py).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pytest
from allauth.account.models import EmailAddress
from django.core.files.storage import storages
from django.test import Client
from django.utils import timezone

from access_requests.clock import gdpr_due_date
from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import Customer
from processors import registry
from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ExternalTable,
    ProcessorDeletion,
)
from retention.models import LegalHold
from tests.factories import ContactFactory, CorrespondenceFactory

if TYPE_CHECKING:
    from processors.ledger import JobLedger

# Bob's data: each string appears in his records only, so finding one in Alice's export is a leak.
BOB_SECRETS = (
    "Bob Berg AS",
    "bob@berg.example.no",
    "BOBS-HEMMELIGE-SAK-4711",
    "Bobs kontaktperson Bjarne",
    "bjarne@berg.example.no",
    "Berg-tomten 7",
)


@pytest.fixture
def staff_login(request: pytest.FixtureRequest) -> Callable[[Client, Any], Any]:
    """`staff_login(client, user)`: sign staff in as /admin/ requires, with two-factor authentication
    where the suite provides it (tests/conftest.py's `mfa_login`)."""
    try:
        return cast("Callable[[Client, Any], Any]", request.getfixturevalue("mfa_login"))
    except pytest.FixtureLookupError:
        return lambda client, user: client.force_login(user)


TableProvider = Callable[[Customer], ExternalTable]


def _connector_answering(category_key: str, provider: TableProvider, index: int) -> type[Connector]:
    class AnsweringConnector(Connector):
        """A configured processor whose one exported table is what `provider` answers."""

        key = f"test_processor_{index}"
        name = "Test processor"
        processor = "zendesk"
        categories = (category_key,)
        erases_customers = False
        export_categories = {f"test.Table{index}": category_key}

        def status(self) -> ConnectorStatus:
            return ConnectorStatus(configured=True, reason="a test's own connector")

        def export_table(self, customer: Customer, name: str) -> ExternalTable | None:
            return provider(customer)

        def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
            raise NotImplementedError

        def check_settings(self) -> list[Drift]:
            return []

    return AnsweringConnector


@pytest.fixture
def processor_tables(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`processor_tables("correspondence", provider, ...)`: for this test the processors are one
    configured connector per provider, whose table in that category is what the provider answers
    for the customer; with no provider, there is no processor at all."""

    def install(category_key: str, *providers: TableProvider) -> None:
        connectors = tuple(
            _connector_answering(category_key, provider, index) for index, provider in enumerate(providers)
        )
        monkeypatch.setattr(registry, "CONNECTOR_CLASSES", connectors)

    return install


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """`.delay()` runs the task in this process, as a worker would, retries included."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


def issue_invoice(customer: Customer, *, issued_on: date, description: str = "WordPress hosting") -> Any:
    invoice = customer_services.invoice_create(
        customer=customer, lines=[(description, Decimal("1"), Decimal("249.00"))], issue_on=issued_on
    )
    customer_services.payment_register(
        invoice=invoice, amount=invoice.total_amount, paid_on=issued_on + timedelta(days=10), reference="1234"
    )
    return invoice


@pytest.fixture
def alice_with_everything(alice: Customer) -> Customer:
    """Alice with rows in every table of the data map that the portal can hold for her."""
    assert alice.user is not None
    EmailAddress.objects.create(user=alice.user, email=alice.email, verified=True, primary=True)
    ContactFactory.create(customer=alice, name="Astrid Hansen", email="astrid@example.no")
    issue_invoice(alice, issued_on=date(2025, 3, 31), description="Managed WordPress, mars")
    issue_invoice(alice, issued_on=date(2025, 4, 30), description="Managed WordPress, april")
    CorrespondenceFactory.create(customer=alice, subject="Hjelp med e-post, æøå")
    CorrespondenceFactory.create(
        customer=alice,
        messages=[{"sent_at": "2025-05-01T10:00:00+02:00", "sender": "support", "body": "Løst 🎉, «sitat»"}],
    )
    LegalHold.objects.create(customer=alice, reason="Tvist om faktura")
    AuditEvent.record(AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=alice.pk, target=alice)
    return alice


@pytest.fixture
def bob_with_secrets(bob: Customer) -> Customer:
    bob.street_address = "Berg-tomten 7"
    bob.save()
    ContactFactory.create(customer=bob, name="Bobs kontaktperson Bjarne", email="bjarne@berg.example.no")
    issue_invoice(bob, issued_on=date(2025, 3, 31), description="BOBS-HEMMELIGE-SAK-4711")
    CorrespondenceFactory.create(customer=bob, subject="BOBS-HEMMELIGE-SAK-4711")
    AuditEvent.record(AuditEvent.Kind.CUSTOMER_VIEWED, customer_id=bob.pk, target=bob)
    AccessRequest.objects.create(
        customer=bob,
        status=AccessRequest.Status.REJECTED,
        due_on=gdpr_due_date(timezone.localdate()),
        rejection_reason="BOBS-HEMMELIGE-SAK-4711",
    )
    return bob


def new_request(customer: Customer, **fields: Any) -> AccessRequest:
    fields.setdefault("received_at", timezone.now())
    fields.setdefault("due_on", gdpr_due_date(timezone.localdate(fields["received_at"])))
    return AccessRequest.objects.create(customer=customer, **fields)


def read_export(access_request: AccessRequest) -> dict[str, bytes]:
    """Every file of the request's ZIP, by name, read back from the export storage."""
    access_request.refresh_from_db()
    with storages["default"].open(access_request.export_name, "rb") as stored:
        archive = zipfile.ZipFile(io.BytesIO(stored.read()))
    assert archive.testzip() is None
    return {name: archive.read(name) for name in archive.namelist()}
