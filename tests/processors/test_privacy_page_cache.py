"""/privacy/ keeps its rendered policy in the shared cache for a few minutes: a visitor's request
costs the layout around it, not the data map's twenty-odd translated texts and the purge dates. What
it says must still be current: the night's purge shows as soon as it has run, each language and each
configured period has its own copy, and nothing from one visitor's request (the CSRF token of the
language switch) is served to the next."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django.utils.formats import date_format

from retention.services import purge_run

pytestmark = pytest.mark.django_db


def page(client: Client, language: str) -> str:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get("/privacy/")
    assert response.status_code == 200
    return response.content.decode()


def correspondence(html: str) -> str:
    match = re.search(r'id="category-correspondence">(.*?)</article>', html, re.DOTALL)
    assert match
    return match.group(1)


def test_a_purge_that_has_run_shows_at_once_though_the_page_was_cached(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    assert "Not yet verified." in correspondence(page(client, "en"))

    with django_capture_on_commit_callbacks(execute=True):  # the run's transaction commits
        purge_run(category="correspondence")

    today = date_format(timezone.localdate(), "SHORT_DATE_FORMAT", use_l10n=True)
    with_run = correspondence(page(client, "en"))
    assert "Not yet verified." not in with_run
    assert f"Last verified {today}." in with_run


def test_each_language_and_each_configured_period_has_its_own_copy(client: Client, settings: Any) -> None:
    english, norwegian = page(client, "en"), page(client, "nb")
    assert "Until 3 months after the customer relationship ended." in correspondence(english)
    assert "Til 3 måneder etter at kundeforholdet ble avsluttet." in correspondence(norwegian)

    settings.RETENTION = {"customer_data_months": 4}
    assert "Until 4 months after the customer relationship ended." in correspondence(page(client, "en"))


def test_each_visitor_gets_a_csrf_token_of_their_own(client: Client) -> None:
    def token(html: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert match
        return match.group(1)

    first = page(Client(), "en")
    second = page(Client(), "en")
    assert token(first) != token(second)
