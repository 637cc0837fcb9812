"""In a real browser (Debian's Chromium), a new employee signs in for the first time: the password
once, the authenticator app set up from a readable secret, the recovery codes with a way on, the
admin index. Each page is in the portal's look with `lang` set, and there is one password prompt
and one code prompt, and axe finds nothing serious or critical on any of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.access_requests.test_browser import (
    _django_beside_playwrights_event_loop,
    browser,
    browser_context_args,
    browser_type,
    browser_type_launch_args,
    launch_browser,
    playwright,
)
from tests.browser_axe import serious_violations
from tests.security.sign_in import code_for_secret

__all__ = [
    "_django_beside_playwrights_event_loop",
    "browser",
    "browser_context_args",
    "browser_type",
    "browser_type_launch_args",
    "launch_browser",
    "playwright",
]

PASSWORD = "korrekt-hest-batteri-stift"


def _prompts(page: Any) -> dict[str, int]:
    return {
        "password": page.locator("input[type=password]").count(),
        "code": page.locator("input[name=code]").count(),
    }


def _in_the_portals_look(page: Any, language: str) -> None:
    assert page.get_attribute("html", "lang") == language
    stylesheets = page.eval_on_selector_all("link[rel=stylesheet]", "links => links.map(l => l.href)")
    assert any(href.endswith(("portal/portal.css", "admin/css/base.css")) for href in stylesheets), (
        stylesheets
    )
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Times" not in font
    assert serious_violations(page) == [], page.url


@pytest.mark.django_db(transaction=True)
def test_a_new_employee_signs_in_once_sets_up_the_app_and_reaches_the_admin(
    live_server: Any, support_user: User, page: Any
) -> None:
    support_user.email = "ny.ansatt@wphosting.example"
    support_user.set_password(PASSWORD)
    support_user.save()
    page.set_default_timeout(20_000)
    seen: list[dict[str, int]] = []

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    _in_the_portals_look(page, "en")
    seen.append(_prompts(page))
    page.fill("input[name=login]", support_user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form [type=submit]")

    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    _in_the_portals_look(page, "en")
    secret = page.input_value("#authenticator_secret")
    assert len(secret) >= 16 and page.get_attribute("#authenticator_secret", "disabled") is None
    box = page.locator("#authenticator_secret").bounding_box()
    assert box is not None and box["width"] >= 200  # the whole secret is readable
    assert page.locator("img[src^='data:image/svg']").count() == 1  # the QR code
    seen.append(_prompts(page))
    page.fill("input[name=code]", code_for_secret(secret))
    page.click("form.sign-in button[type=submit]")

    page.wait_for_url("**/accounts/2fa/recovery-codes/**")
    _in_the_portals_look(page, "en")
    assert page.locator("#recovery_codes").count() == 1
    assert page.locator("a[href$='/accounts/2fa/recovery-codes/download/']").count() == 1
    seen.append(_prompts(page))
    page.click("a.button-primary[href='/admin/']")

    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#content").count() == 1  # the admin index, no prompt in front of it
    assert serious_violations(page) == [], page.url
    seen.append(_prompts(page))

    assert [prompt["password"] for prompt in seen] == [1, 0, 0, 0]
    assert [prompt["code"] for prompt in seen] == [0, 1, 0, 0]
