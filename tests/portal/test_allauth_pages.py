"""Every allauth page staff can reach has the portal's look and says its language: to a careful new
employee an unstyled page without `lang` asking for a password again looks like phishing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.test import Client
from django.urls import reverse

from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


def _staff_with_two_factor(client: Client, user: Any) -> None:
    sign_in_with_second_factor(client, user)
    RecoveryCodes.activate(user)


def _staff_without_an_app(client: Client, user: Any) -> None:
    client.force_login(user)


def _anonymous(client: Client, user: Any) -> None:
    pass


PAGES: dict[str, tuple[str, Callable[[Client, Any], None]]] = {
    "two-factor settings": ("mfa_index", _staff_with_two_factor),
    "authenticator code again": ("mfa_reauthenticate", _staff_with_two_factor),
    "password again": ("account_reauthenticate", _staff_without_an_app),
    "inactive account": ("account_inactive", _anonymous),
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("language", ["nb", "en"])
def test_allauths_pages_are_the_portals(client: Client, support_user: Any, page: str, language: str) -> None:
    url_name, sign_in = PAGES[page]
    sign_in(client, support_user)
    response = client.get(reverse(url_name), headers={"Accept-Language": language})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert "portal/portal.css" in html  # the portal's stylesheet, not the browser's Times
    assert 'class="site-header"' in html and 'class="site-footer"' in html
    assert "<title>" in html and "– WP Hosting</title>" in html
