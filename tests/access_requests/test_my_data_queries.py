"""/my-data/ asks the database a fixed handful of questions: the session, the user, the customer,
her requests, and one statement with every data-map table's count and her deletion facts. A COUNT
per table (or per category) coming back would make the page slower with every table the data map
grows by; these tests fail on it. The counts stay each table's own: the statement is compiled once a
day and must still answer for whoever asks."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from access_requests import selectors
from customers.models import Customer
from retention.data_map import tables
from tests.access_requests.portal_fixtures import alice_client, bob_client
from tests.factories import CorrespondenceFactory

__all__ = ["alice_client", "bob_client"]

MY_DATA = "/my-data/"
# The session, the user, the customer, her access requests, the summary.
QUERIES = 5


def queries_of(client: Client) -> list[str]:
    client.get(MY_DATA)  # the first request may start the session clock and save the session
    with CaptureQueriesContext(connection) as captured:
        response = client.get(MY_DATA)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def test_my_data_asks_the_same_few_questions_however_many_tables_the_data_map_has(
    alice_with_everything: Customer, alice_client: Client
) -> None:
    assert len(list(tables())) > QUERIES  # one COUNT per table could not fit
    sql = queries_of(alice_client)
    assert len(sql) == QUERIES, "\n".join(sql)
    assert not [statement for statement in sql if re.match(r"\s*SELECT\s+COUNT\(", statement)]


def test_each_count_on_the_page_is_that_tables_own_count_for_her(alice_with_everything: Customer) -> None:
    summary = selectors.stored_data_summary(alice_with_everything)
    shown = [table.count for item in summary for table in item.tables]
    expected = [table.rows_for_customer(alice_with_everything.pk).count() for _category, table in tables()]
    assert shown == expected
    assert sum(shown) > len(shown) // 2  # she has rows in most tables: the oracle is not all zeros


def test_the_statement_compiled_for_alice_answers_for_bob_with_his_own_rows(
    alice_with_everything: Customer, bob: Customer, alice_client: Client, bob_client: Client
) -> None:
    CorrespondenceFactory.create_batch(3, customer=bob)
    for client in (alice_client, bob_client):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    alice_page = alice_client.get(MY_DATA).content.decode()
    bob_page = bob_client.get(MY_DATA).content.decode()

    bob_counts = {table.model: table.rows_for_customer(bob.pk).count() for _category, table in tables()}
    assert bob_counts["customers.Correspondence"] == 3
    correspondence = r'<span class="count">(\d+)</span>\s*Correspondence'
    assert re.search(correspondence, bob_page).group(1) == "3"
    alice_threads = alice_with_everything.correspondence.count()
    assert re.search(correspondence, alice_page).group(1) == str(alice_threads)
    assert alice_threads != 3
