"""Sessions: a fresh key at sign-in, idle and absolute timeouts, and signing out (or being
deactivated) ends every session of the user."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import UserSession
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

PASSWORD = "korrekt-hest-batteri-stift"
ADMIN = "/admin/"
MY_DATA = "/my-data/"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(timezone.make_aware(datetime(2026, 6, 15, 9, 0)), tick=False) as traveller:
        yield traveller


def _session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _signed_in(client: Client, url: str) -> bool:
    status = client.get(url).status_code
    assert status in (200, 302), status
    return status == 200


def test_signing_in_gives_the_session_a_fresh_key(client: Client, support_user: Any) -> None:
    support_user.email = "siri@wphosting.example"
    support_user.set_password(PASSWORD)
    support_user.save()
    before = SessionStore()
    before["planted"] = True
    before.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = str(before.session_key)
    response = client.post(reverse("admin:login"), {"login": support_user.email, "password": PASSWORD})
    assert response.status_code == 302
    after = _session_key(client)
    assert after != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    assert UserSession.objects.filter(session_id=after, user=support_user).exists()


# --- Timeouts ----------------------------------------------------------------------------------


def test_staff_are_signed_out_after_30_minutes_without_a_request(
    clock: Any, client: Client, superuser: Any
) -> None:
    sign_in_with_second_factor(client, superuser)
    assert _signed_in(client, ADMIN)
    clock.shift(timedelta(minutes=29))
    assert _signed_in(client, ADMIN)  # activity keeps the session
    clock.shift(timedelta(minutes=29))
    assert _signed_in(client, ADMIN)
    clock.shift(timedelta(minutes=30, seconds=1))
    response = client.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not UserSession.objects.filter(user=superuser).exists()


def test_customers_are_signed_out_after_two_hours_without_a_request(
    clock: Any, client: Client, alice: Any
) -> None:
    client.force_login(alice.user)
    assert _signed_in(client, MY_DATA)
    clock.shift(timedelta(hours=1, minutes=59))
    assert _signed_in(client, MY_DATA)
    clock.shift(timedelta(hours=2, seconds=1))
    assert not _signed_in(client, MY_DATA)


def test_everyone_is_signed_out_twelve_hours_after_signing_in(clock: Any, client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    for _hour in range(11):
        clock.shift(timedelta(hours=1))
        assert _signed_in(client, MY_DATA)
    clock.shift(timedelta(minutes=59))
    assert _signed_in(client, MY_DATA)  # 11 h 59 min
    clock.shift(timedelta(minutes=1))
    assert not _signed_in(client, MY_DATA)  # 12 h, however busy


def test_a_timeout_ends_only_that_session(clock: Any, alice: Any) -> None:
    laptop, phone = Client(), Client()
    laptop.force_login(alice.user)
    clock.shift(timedelta(hours=1, minutes=30))
    phone.force_login(alice.user)
    clock.shift(timedelta(minutes=31))
    assert not _signed_in(laptop, MY_DATA)
    assert _signed_in(phone, MY_DATA)


def test_a_timeout_is_logged_with_the_user_id_only(
    clock: Any, client: Client, alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(alice.user)
    clock.shift(timedelta(hours=3))
    client.get(MY_DATA)
    ended = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "session_ended"]
    assert ended and ended[0]["reason"] == "idle_timeout" and ended[0]["user_id"] == alice.user.pk


# --- Signing out and deactivation --------------------------------------------------------------


def test_after_signing_out_the_old_session_cookie_is_rejected(client: Client, superuser: Any) -> None:
    sign_in_with_second_factor(client, superuser)
    assert _signed_in(client, ADMIN)
    old_key = _session_key(client)
    assert client.post(reverse("account_logout")).status_code == 302
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert not _signed_in(replay, ADMIN)
    assert not Session.objects.filter(session_key=old_key).exists()


def test_a_customers_old_cookie_is_rejected_after_signing_out(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    old_key = _session_key(client)
    client.post(reverse("account_logout"))
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert not _signed_in(replay, MY_DATA)


def test_signing_out_ends_the_users_sessions_on_every_device(alice: Any, bob: Any) -> None:
    laptop, phone, bobs = Client(), Client(), Client()
    for client, customer in ((laptop, alice), (phone, alice), (bobs, bob)):
        client.force_login(customer.user)
        assert _signed_in(client, MY_DATA)
    laptop.post(reverse("account_logout"))
    assert not _signed_in(phone, MY_DATA)
    assert _signed_in(bobs, MY_DATA)  # someone else's session is untouched


def test_signing_out_of_the_admin_ends_the_sessions_too(client: Client, superuser: Any) -> None:
    other = Client()
    sign_in_with_second_factor(client, superuser)
    sign_in_with_second_factor(other, superuser)
    client.post(reverse("admin:logout"))
    assert not _signed_in(other, ADMIN)


def test_deactivating_a_staff_user_ends_their_sessions(client: Client, support_user: Any) -> None:
    sign_in_with_second_factor(client, support_user)
    assert _signed_in(client, reverse("admin:customers_customer_changelist"))
    support_user.is_active = False
    support_user.save()
    assert not UserSession.objects.filter(user=support_user).exists()
    assert not Session.objects.filter(session_key=_session_key(client)).exists()
    assert not _signed_in(client, reverse("admin:customers_customer_changelist"))


def test_deactivating_through_the_admin_ends_their_sessions(
    client: Client, superuser: Any, support_user: Any
) -> None:
    staff_browser = Client()
    sign_in_with_second_factor(staff_browser, support_user)
    sign_in_with_second_factor(client, superuser)
    change = reverse("admin:auth_user_change", args=[support_user.pk])
    form = client.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "is_active": "",
            "groups": [group.pk for group in support_user.groups.all()],
            "user_permissions": [],
            "date_joined_0": support_user.date_joined.strftime("%d.%m.%Y"),
            "date_joined_1": support_user.date_joined.strftime("%H:%M:%S"),
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    support_user.refresh_from_db()
    assert not support_user.is_active
    assert not _signed_in(staff_browser, ADMIN)


def test_the_session_registry_goes_with_expired_sessions(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    key = _session_key(client)
    assert UserSession.objects.filter(session_id=key).exists()
    # What the nightly purge does with expired sessions (retention/purges/audit.py).
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    Session.objects.filter(expire_date__lt=timezone.now()).delete()
    assert not UserSession.objects.filter(session_id=key).exists()


def test_the_session_registry_goes_with_a_purged_customer_user(client: Client, alice: Any) -> None:
    client.force_login(alice.user)
    alice.user.delete()
    assert not UserSession.objects.exists()
