"""The customer's own pages: what is stored about her, her requests, and the request button."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from access_requests.models import AccessRequest
from customers.models import Customer
from retention.data_map import categories
from tests.access_requests.portal_fixtures import (
    alice_client,
    alice_ready_request,
    alice_request,
    bob_client,
    local_exports,
    make_request,
)
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    UserFactory,
)

__all__ = ["alice_client", "alice_ready_request", "alice_request", "bob_client", "local_exports"]

MY_DATA = "/my-data/"
REQUEST_CREATE = "/my-data/requests/"


def in_english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def category_section(page: str, key: str) -> str:
    match = re.search(rf'<article class="card category" id="category-{key}">(.*?)</article>', page, re.DOTALL)
    assert match, f"no section for category {key}"
    return match.group(1)


def no_store(response: object) -> bool:
    return "no-store" in response["Cache-Control"]  # type: ignore[index]


def test_my_data_shows_every_category_with_counts_purpose_processor_and_deletion(
    alice: Customer, alice_client: Client
) -> None:
    ContactFactory.create(customer=alice, name="Regnskapsfører")
    CorrespondenceFactory.create_batch(2, customer=alice)
    page = in_english(alice_client).get(MY_DATA).content.decode()

    with translation.override("en"):
        for category in categories():
            section = category_section(page, category.key)
            assert str(category.name) in section
            assert str(category.purpose) in section
            assert str(category.legal_basis).replace("'", "&#x27;") in section
            for processor in category.processor_list():
                assert processor.name in section
            assert "Deleted" in section
        account = category_section(page, "customer_account")
        assert "kept while the customer relationship is active" in account
        assert re.search(
            r'<span class="count">2</span>\s*Correspondence', category_section(page, "correspondence")
        )
        assert re.search(r'<span class="count">1</span>\s*Contacts', account)
        assert re.search(r'<span class="count">1</span>\s*Contracts', category_section(page, "contracts"))
        assert "Not in this portal" in category_section(page, "server_logs")
        assert "nothing is stored about you in this category" in category_section(page, "invoices")
        assert "no single date" in category_section(page, "server_logs")


def test_my_data_shows_the_deletion_date_once_the_relationship_has_ended(client: Client, db: None) -> None:
    with time_machine.travel(date(2026, 3, 1), tick=False):
        customer = CustomerFactory.create(name="Fjellvann AS", user=UserFactory.create(username="fjellvann"))
        ContractFactory.create(customer=customer, started_on=date(2024, 1, 1), ended_on=date(2025, 12, 31))
        assert customer.user is not None
        client.force_login(customer.user)
        page = in_english(client).get(MY_DATA).content.decode()
    with translation.override("en"):
        deleted_on = date_format(date(2026, 4, 1), "SHORT_DATE_FORMAT")
        kept_until = date_format(date(2026, 3, 31), "SHORT_DATE_FORMAT")
    account = category_section(page, "customer_account")
    assert f"<strong>{deleted_on}</strong>" in account
    assert f"kept until {kept_until}, 3 months after the relationship ended" in account


def test_my_data_shows_when_the_file_of_a_ready_copy_is_deleted(
    alice_client: Client, alice_ready_request: AccessRequest
) -> None:
    page = in_english(alice_client).get(MY_DATA).content.decode()
    with translation.override("en"):
        expires = date_format(timezone.localdate(alice_ready_request.expires_at), "SHORT_DATE_FORMAT")
    section = category_section(page, "access_request_exports")
    assert f"<strong>{expires}</strong>" in section
    assert "deleted 7 days after it was ready" in section


def test_my_data_lists_her_requests_and_offers_the_request_button(
    alice_client: Client, alice_request: AccessRequest
) -> None:
    page = in_english(alice_client).get(MY_DATA).content.decode()
    assert f'action="{REQUEST_CREATE}"' in page
    assert "Request a copy of my data" in page
    assert alice_request.get_absolute_url() in page
    assert "You have a request from" in page


def test_pressing_the_button_makes_a_request_and_shows_it(alice: Customer, alice_client: Client) -> None:
    response = alice_client.post(REQUEST_CREATE)
    access_request = AccessRequest.objects.get(customer=alice)
    assert response.status_code == 302
    assert response["Location"] == access_request.get_absolute_url()
    assert access_request.channel == AccessRequest.Channel.PORTAL
    assert access_request.status == AccessRequest.Status.RECEIVED


def test_a_second_press_explains_why_not(alice: Customer, alice_client: Client) -> None:
    alice_client.post(REQUEST_CREATE)
    response = in_english(alice_client).post(REQUEST_CREATE, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == MY_DATA
    assert "You already have a request from" in response.content.decode()
    assert AccessRequest.objects.filter(customer=alice).count() == 1


def test_the_request_page_shows_status_progress_and_due_date(
    alice_client: Client, alice_request: AccessRequest
) -> None:
    AccessRequest.objects.filter(pk=alice_request.pk).update(
        status=AccessRequest.Status.BUILDING, progress=40
    )
    page = in_english(alice_client).get(alice_request.get_absolute_url()).content.decode()
    with translation.override("en"):
        due = date_format(alice_request.due_on, "SHORT_DATE_FORMAT")
    assert "Being prepared" in page
    assert '<progress id="progress" max="100" value="40"' in page
    assert f"We answer by</dt>\n      <dd>{due}" in page
    assert 'data-status-url="' + reverse("access_requests:status", args=[alice_request.pk]) in page
    assert "<script src=" in page and "<script>" not in page  # no inline script (CSP)


def test_a_ready_request_shows_the_download_button_and_when_the_file_expires(
    alice_client: Client, alice_ready_request: AccessRequest
) -> None:
    page = in_english(alice_client).get(alice_ready_request.get_absolute_url()).content.decode()
    with translation.override("en"):
        expires = date_format(timezone.localtime(alice_ready_request.expires_at), "SHORT_DATETIME_FORMAT")
    assert reverse("access_requests:download", args=[alice_ready_request.pk]) in page
    assert "Download your data (ZIP)" in page
    assert f"The file is deleted on {expires}" in page


def test_an_extended_deadline_shows_the_reason(alice_client: Client, alice: Customer) -> None:
    access_request = make_request(alice, extended_at=timezone.now(), extension_reason="Mange saker nå")
    page = in_english(alice_client).get(access_request.get_absolute_url()).content.decode()
    assert "The deadline was extended: Mange saker nå" in page


def test_a_rejected_request_shows_the_reason(alice_client: Client, alice: Customer) -> None:
    access_request = make_request(alice, status=AccessRequest.Status.REJECTED, rejection_reason="Ikke kunde")
    page = in_english(alice_client).get(access_request.get_absolute_url()).content.decode()
    assert "We could not answer this request: Ikke kunde" in page


def test_the_status_url_reports_live_progress(alice_client: Client, alice_request: AccessRequest) -> None:
    AccessRequest.objects.filter(pk=alice_request.pk).update(
        status=AccessRequest.Status.BUILDING, progress=65
    )
    response = alice_client.get(reverse("access_requests:status", args=[alice_request.pk]))
    assert response.status_code == 200
    assert no_store(response)
    body = response.json()
    assert body["status"] == "building" and body["progress"] == 65
    assert body["downloadable"] is False and body["download_url"] is None
    assert body["due_on"] == alice_request.due_on.isoformat()


@pytest.mark.parametrize("path", ["my_data", "detail", "status"])
def test_pages_with_personal_data_are_never_cached(
    alice_client: Client, alice_request: AccessRequest, path: str
) -> None:
    url = MY_DATA if path == "my_data" else reverse(f"access_requests:{path}", args=[alice_request.pk])
    response = alice_client.get(url)
    assert response.status_code == 200
    assert no_store(response)


def test_the_pages_are_norwegian_by_default_and_english_by_the_language_switch(alice_client: Client) -> None:
    page = alice_client.get(MY_DATA).content.decode()
    assert '<html lang="nb">' in page
    assert "kundedataportal" in page  # the footer, translated
    response = alice_client.post(reverse("set_language"), {"language": "en", "next": MY_DATA})
    assert response["Location"] == MY_DATA
    page = alice_client.get(MY_DATA).content.decode()
    assert '<html lang="en">' in page
    assert "customer data portal" in page
    assert "What we store about you" in page


def test_someone_not_signed_in_is_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.get(MY_DATA)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={MY_DATA}"


def test_staff_are_not_customers(client: Client, support_user: object, mfa_login: Any) -> None:
    mfa_login(client, support_user)
    assert client.get(MY_DATA).status_code == 404


def test_the_page_is_usable_on_a_phone(alice_client: Client) -> None:
    page = alice_client.get(MY_DATA).content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert 'class="table-scroll"' in page or "You have not asked" in page or "Du har ikke" in page
