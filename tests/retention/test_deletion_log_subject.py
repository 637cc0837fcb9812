"""Every DeletionLog line names the customer it is about, also for records deleted years after the
customer row: "everything deleted about customer 17" is one query."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from customers import services as customer_services
from customers.models import Contract, Customer, Invoice
from retention.models import DeletionLog
from retention.services import purge_all
from tests.factories import ContractFactory, CorrespondenceFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_invoices_deleted_after_their_customer_are_logged_with_her_id() -> None:
    customer = CustomerFactory.create(name="Forlengst Borte AS")
    contract = ContractFactory.create(
        customer=customer, started_on=date(2019, 1, 1), ended_on=date(2020, 12, 31)
    )
    CorrespondenceFactory.create(customer=customer)
    invoice = customer_services.invoice_create(
        customer=customer,
        lines=[("Hosting", Decimal(1), Decimal("249.00"))],
        contract_id=contract.pk,
        issue_on=date(2020, 12, 1),
    )
    customer_id = customer.pk
    with time_machine.travel(timezone.make_aware(datetime(2021, 5, 1, 3, 0)), tick=False):
        purge_all()
    assert not Customer.objects.filter(pk=customer_id).exists()
    assert Invoice.objects.filter(pk=invoice.pk).exists()

    purge_all()  # today: 2020's invoices went on 1 January 2026

    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert not Contract.objects.filter(pk=contract.pk).exists()
    unnamed = DeletionLog.objects.filter(customer_id__isnull=True).exclude(model="audit.AuditEvent")
    assert list(unnamed.values_list("model", flat=True)) == []
    about_her = set(DeletionLog.objects.filter(customer_id=customer_id).values_list("model", flat=True))
    assert {
        "customers.Customer",
        "customers.Correspondence",
        "customers.Invoice",
        "customers.InvoiceLine",
        "customers.Contract",
    } <= about_her
