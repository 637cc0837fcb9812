"""No admin changelist counts a whole table: with millions of customers, a `COUNT(*)` of every row
on each page view was most of the page. An unfiltered list of a large table pages by PostgreSQL's
own estimate; a filtered or searched one, and a small table, are counted exactly. Derived from the
admin registry: every registered changelist is held to it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.admin_paging import ESTIMATE_FROM, EstimatedCountPaginator
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/customer/"


def pretend_postgresql_estimates(table: str, rows: int) -> None:
    # What ANALYZE would have written for a table that size (rolled back with the test).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_class SET reltuples = %s WHERE oid = to_regclass(%s)", [rows, table])


def whole_table_counts(queries: list[dict[str, Any]], table: str) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if re.search(r"COUNT\(", query["sql"]) and table in query["sql"] and " WHERE " not in query["sql"]
    ]


def test_every_changelist_pages_without_counting_the_whole_table() -> None:
    for model, model_admin in admin.site._registry.items():
        assert model_admin.show_full_result_count is False, model
        assert issubclass(model_admin.paginator, EstimatedCountPaginator), model


def test_a_large_customer_table_is_listed_by_its_estimate_without_a_count(
    client: Client, superuser: Any, mfa_login: Callable[[Client, Any], Any]
) -> None:
    CustomerFactory.create_batch(3)
    pretend_postgresql_estimates("customers_customer", 2_000_000)
    mfa_login(client, superuser)

    with CaptureQueriesContext(connection) as captured:
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert whole_table_counts(captured.captured_queries, "customers_customer") == []
    assert response.context["cl"].result_count == 2_000_000


def test_a_small_table_and_a_search_are_counted_exactly(
    client: Client, superuser: Any, mfa_login: Callable[[Client, Any], Any]
) -> None:
    CustomerFactory.create_batch(3)
    CustomerFactory.create(name="Fjordkraft Søk AS")
    mfa_login(client, superuser)
    pretend_postgresql_estimates("customers_customer", ESTIMATE_FROM - 1)
    assert client.get(CHANGELIST).context["cl"].result_count == 4

    pretend_postgresql_estimates("customers_customer", 2_000_000)
    assert client.get(CHANGELIST, {"q": "fjordkraft"}).context["cl"].result_count == 1
