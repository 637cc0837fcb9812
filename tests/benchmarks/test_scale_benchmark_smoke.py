"""The million-customer benchmark (benchmarks/scale.py) at a tiny scale, so it cannot rot unnoticed:
its builder makes the customers it describes (a third ended, 1 % of all due, five invoices with a
line each and ten correspondence rows apiece, the big customer with her 10,000 invoices), and the
searches it times find the customer they look for. Timing is printed by the benchmark, never
asserted here."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from benchmarks import scale as bench
from customers.models import Contract, Customer, Invoice, InvoiceLine

pytestmark = pytest.mark.django_db

CUSTOMERS = 300


def test_the_builder_makes_what_the_benchmark_describes() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    ids = bench.build(customers=CUSTOMERS, progress=lambda line: None)

    assert Customer.objects.count() == CUSTOMERS + 1
    ended = [g for g in range(1, CUSTOMERS + 1) if g % 3 == 0 or g % 100 == 0]  # about a third
    assert Contract.objects.filter(ended_on__isnull=False).count() == len(ended)
    assert Contract.objects.filter(ended_on__year=2019).count() == CUSTOMERS // 100
    assert Invoice.objects.exclude(customer_id=ids["big_customer"]).count() == CUSTOMERS * 5
    assert Invoice.objects.filter(customer_id=ids["big_customer"]).count() == bench.BIG_CUSTOMER_INVOICES
    assert InvoiceLine.objects.count() == Invoice.objects.count()
    due = Invoice.objects.filter(customer__contracts__ended_on__year=2019)
    assert due.filter(issued_on__year__gte=2019).count() == 0
    assert Invoice.objects.filter(issued_on__gte=timezone.localdate()).count() == 0

    some = CUSTOMERS // 2 + 2
    for term in (f"kunde{some}@example.no", str(800000000 + some), str(100000 + 5 * some)):
        assert list(Customer.objects.all().search(term).values_list("pk", flat=True)) == [some], term
