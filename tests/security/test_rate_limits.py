"""Every sign-in path is rate-limited in Redis, with a clear message that tells nobody whether an
account exists: staff passwords, staff second factors, customers' codes, and the API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.security.sign_in import authenticator_app_of, current_code

pytestmark = pytest.mark.django_db

PASSWORD = "korrekt-hest-batteri-stift"
ENGLISH = {"Accept-Language": "en"}
TOO_MANY = "Too many failed login attempts. Try again later."
MISMATCH = "The email address and/or password you specified are not correct."
REQUEST_CODE = reverse("account_request_login_code")
CONFIRM_CODE = reverse("account_confirm_login_code")
CODE_LINE = re.compile(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", re.MULTILINE)


@pytest.fixture
def staff_member(support_user: Any) -> Any:
    support_user.email = "siri@wphosting.example"
    support_user.set_password(PASSWORD)
    support_user.save()
    return support_user


def _staff_sign_in(client: Client, email: str, password: str) -> str:
    """Post the staff sign-in form; the form's errors ("" when it signed in)."""
    response = client.post(reverse("admin:login"), {"login": email, "password": password}, headers=ENGLISH)
    if response.status_code == 302:
        return ""
    assert response.status_code == 200
    return " ".join(str(error) for errors in response.context["form"].errors.values() for error in errors)


def test_the_sixth_failed_staff_sign_in_within_five_minutes_is_refused(
    client: Client, staff_member: Any
) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _attempt in range(5):
            assert _staff_sign_in(client, staff_member.email, "wrong-password") == MISMATCH
            clock.shift(timedelta(seconds=50))
        # 4 min 10 s after the first failure: refused, even with the right password.
        assert _staff_sign_in(client, staff_member.email, PASSWORD) == TOO_MANY
        assert client.get(reverse("admin:index")).status_code == 302
        # Once the first failures are more than 5 minutes old, the right password works again.
        clock.shift(timedelta(minutes=2))
        assert _staff_sign_in(client, staff_member.email, PASSWORD) == ""


def test_an_unknown_address_gets_exactly_the_same_answers(staff_member: Any) -> None:
    # From two addresses: one address may fail only 10 sign-ins a minute, whatever they try.
    from_one, from_another = Client(REMOTE_ADDR="192.0.2.1"), Client(REMOTE_ADDR="192.0.2.2")
    known = [_staff_sign_in(from_one, staff_member.email, "wrong-password") for _attempt in range(6)]
    unknown = [
        _staff_sign_in(from_another, "nobody@wphosting.example", "wrong-password") for _attempt in range(6)
    ]
    assert known == unknown == [MISMATCH] * 5 + [TOO_MANY]


def test_a_customer_cannot_sign_in_at_the_admin_with_no_password(client: Client, alice: Any) -> None:
    assert _staff_sign_in(client, "alice@example.no", "") != ""
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_sixth_wrong_second_factor_code_is_refused(client: Client, staff_member: Any) -> None:
    authenticator = authenticator_app_of(staff_member)
    assert _staff_sign_in(client, staff_member.email, PASSWORD) == ""
    for _attempt in range(5):
        response = client.post(reverse("mfa_authenticate"), {"code": "000000"}, headers=ENGLISH)
        assert "Incorrect code." in response.content.decode()
    response = client.post(
        reverse("mfa_authenticate"), {"code": current_code(authenticator)}, headers=ENGLISH
    )
    assert TOO_MANY in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_refusals_are_logged_without_the_address(
    client: Client, staff_member: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for _attempt in range(6):
        _staff_sign_in(client, staff_member.email, "wrong-password")
    events = [record.msg for record in caplog.records if isinstance(record.msg, dict)]
    assert [event["method"] for event in events if event["event"] == "sign_in_failed"] == ["password"] * 5
    assert any(event == {**event, "event": "sign_in_refused", "reason": "rate_limited"} for event in events)
    assert staff_member.email not in caplog.text


def test_too_many_requests_get_a_page_that_says_what_to_do(client: Client, db: None, settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    for _attempt in range(2):
        client.post(reverse("admin:login"), {"login": "someone@example.no", "password": "x"})
    response = client.post(
        reverse("admin:login"), {"login": "someone@example.no", "password": "x"}, headers=ENGLISH
    )
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many attempts" in page
    assert "Wait five minutes and try again." in page
    assert "someone@example.no" not in page


# --- Customers' codes --------------------------------------------------------------------------


def _code_sent_to(email: str) -> str:
    codes = [
        match.group(1)
        for message in mail.outbox
        if message.to == [email]
        for match in [CODE_LINE.search(str(message.body))]
        if match
    ]
    assert codes, f"no code was sent to {email}"
    return codes[-1]


@pytest.mark.parametrize(
    ("after", "signed_in"),
    [(timedelta(minutes=9, seconds=50), True), (timedelta(minutes=10, seconds=1), False)],
)
def test_a_sign_in_code_expires_after_ten_minutes(
    client: Client, alice: Any, after: timedelta, signed_in: bool, settings: Any
) -> None:
    assert settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT == 10 * 60
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert client.post(REQUEST_CODE, {"email": "alice@example.no"}).status_code == 302
        code = _code_sent_to("alice@example.no")
        clock.shift(after)
        client.post(CONFIRM_CODE, {"code": code})
        assert (client.get(reverse("access_requests:my_data")).status_code == 200) is signed_in


def test_the_fourth_code_request_within_a_minute_sends_nothing(client: Client, alice: Any) -> None:
    for _attempt in range(4):
        Client().post(REQUEST_CODE, {"email": "alice@example.no"})
    assert len([message for message in mail.outbox if message.to == ["alice@example.no"]]) == 3


# --- The API -----------------------------------------------------------------------------------


def test_an_anonymous_caller_is_refused_before_anything_and_throttled_where_it_may_call(
    client: Client, db: None
) -> None:
    # The API has no sign-in of its own (it takes the web sign-in's session), so an anonymous call is
    # refused at once; the public schema is throttled per address.
    assert client.get("/api/v1/access-requests/").status_code == 401
    answers = [client.get(reverse("api-schema")).status_code for _call in range(21)]
    assert set(answers[:20]) == {200}
    assert answers[20] == 429


def test_a_signed_in_api_user_is_throttled_too(
    client: Client, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
    client.force_login(alice.user)
    answers = [client.get("/api/v1/access-requests/").status_code for _call in range(4)]
    assert answers == [200, 200, 200, 429]


def test_the_counters_live_in_redis(settings: Any) -> None:
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert isinstance(caches["default"], RedisCache)
