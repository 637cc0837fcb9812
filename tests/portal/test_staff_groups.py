"""Each staff group sees what it should and is refused what it should not."""

from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from customers import services
from tests.factories import CorrespondenceFactory, CustomerFactory, InvoiceFactory
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def records() -> dict[str, Any]:
    customer = CustomerFactory.create()
    invoice = services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2026, 1, 15)
    )
    return {
        "customer": customer,
        "invoice": invoice,
        "correspondence": CorrespondenceFactory.create(customer=customer),
    }


def _status(client: Client, user: Any, name: str, *args: Any) -> int:
    sign_in_with_second_factor(client, user)
    return client.get(reverse(name, args=args)).status_code


def test_support_works_with_customers_and_correspondence_but_not_invoices(
    client: Client, support_user: Any, records: dict[str, Any]
) -> None:
    assert _status(client, support_user, "admin:customers_customer_changelist") == 200
    assert _status(client, support_user, "admin:customers_customer_change", records["customer"].pk) == 200
    assert _status(client, support_user, "admin:customers_correspondence_changelist") == 200
    assert _status(client, support_user, "admin:customers_invoice_changelist") == 403
    assert _status(client, support_user, "admin:customers_payment_changelist") == 403
    assert _status(client, support_user, "admin:customers_customer_delete", records["customer"].pk) == 403
    assert _status(client, support_user, "admin:customers_customer_add") == 403


def test_billing_works_with_invoices_and_payments_but_not_correspondence(
    client: Client, billing_user: Any, records: dict[str, Any]
) -> None:
    assert _status(client, billing_user, "admin:customers_invoice_changelist") == 200
    assert _status(client, billing_user, "admin:customers_invoice_add") == 200
    assert _status(client, billing_user, "admin:customers_payment_add") == 200
    assert _status(client, billing_user, "admin:customers_correspondence_changelist") == 403
    assert _status(client, billing_user, "admin:customers_customer_add") == 403
    change = client.post(
        reverse("admin:customers_customer_change", args=[records["customer"].pk]), {"name": "Overwritten"}
    )
    assert change.status_code == 403


def test_privacy_officer_sees_everything_and_changes_nothing(
    client: Client, privacy_officer: Any, records: dict[str, Any]
) -> None:
    for name in [
        "admin:customers_customer_changelist",
        "admin:customers_invoice_changelist",
        "admin:customers_correspondence_changelist",
        "admin:customers_payment_changelist",
    ]:
        assert _status(client, privacy_officer, name) == 200, name
    response = client.post(
        reverse("admin:customers_customer_change", args=[records["customer"].pk]), {"name": "Overwritten"}
    )
    # The customer screen opens to the group only for who signs in (tests/security/
    # test_granting_access.py): every other field is read-only.
    assert response.status_code in (200, 403)
    records["customer"].refresh_from_db()
    assert records["customer"].name != "Overwritten"
    assert _status(client, privacy_officer, "admin:customers_invoice_add") == 403


def test_a_signed_in_customer_who_is_not_staff_is_sent_to_the_admin_login(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    response = client.get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_suite_restores_every_staff_group_grant_the_migrations_make() -> None:
    """The grants the suite re-runs after a transactional test are found in the migrations, so a
    new app's grant (the Privacy officer's Vault confirmation, say) is among them."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    from tests.conftest import staff_group_migrations

    names = [
        (migration.app_label, migration.name)
        for migration in staff_group_migrations(MigrationLoader(connection))
    ]
    assert names[0] == ("portal", "0001_staff_groups")
    assert {("retention", "0004_processors"), ("processors", "0002_vault_confirmation")} <= set(names)
