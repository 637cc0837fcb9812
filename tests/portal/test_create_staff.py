"""`manage.py create_staff`: the first employee, in her group, led into two-factor set-up at her
first sign-in."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

# A transactional test earlier in the run empties every table, the groups with them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("staff_groups")]

PASSWORD = "korrekt-hest-batteri-stift"


def create_staff(monkeypatch: pytest.MonkeyPatch, *arguments: str, password: str = PASSWORD) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n"))
    out = io.StringIO()
    call_command("create_staff", *arguments, "--password-stdin", stdout=out)
    return out.getvalue()


def test_kari_is_made_staff_in_her_group_and_told_what_comes_next(monkeypatch: pytest.MonkeyPatch) -> None:
    output = create_staff(
        monkeypatch, "--username", "kari", "--email", "kari@wphosting.example", "--group", "Privacy officer"
    )

    kari = User.objects.get(username="kari")
    assert kari.is_staff and not kari.is_superuser
    assert kari.check_password(PASSWORD)
    assert list(kari.groups.values_list("name", flat=True)) == ["Privacy officer"]
    assert "Created staff user kari (Privacy officer)." in output
    assert "authenticator app" in output


def test_her_first_sign_in_leads_into_setting_up_an_authenticator_app(
    monkeypatch: pytest.MonkeyPatch, client: Client, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    create_staff(monkeypatch, "--username", "kari", "--email", "kari@wphosting.example", "--superuser")

    response = client.post(
        f"{reverse('admin:login')}?next=/admin/", {"login": "kari@wphosting.example", "password": PASSWORD}
    )
    assert response.status_code == 302

    admin = client.get(reverse("admin:index"))
    assert admin.status_code == 302
    assert admin["Location"].startswith(reverse("mfa_activate_totp"))


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (
            ["--group", "Janitors"],
            "no group named Janitors; the groups are: Billing, Privacy officer, Support",
        ),
        ([], "name at least one group"),
    ],
)
def test_an_unknown_or_missing_group_is_refused(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], reason: str
) -> None:
    with pytest.raises(CommandError, match=reason):
        create_staff(monkeypatch, "--username", "kari", "--email", "kari@wphosting.example", *arguments)
    assert not User.objects.exists()


def test_a_weak_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CommandError, match="too common"):
        create_staff(
            monkeypatch, "--username", "kari", "--email", "kari@x.example", "--superuser", password="password"
        )
    assert not User.objects.exists()


def test_an_existing_account_is_never_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    ola = User.objects.create_user(username="ola", email="ola@wphosting.example", password="old-one-2026")
    for arguments in (
        ["--username", "ola", "--email", "new@x.example"],
        ["--username", "x", "--email", "OLA@wphosting.example"],
    ):
        with pytest.raises(CommandError, match="exists already"):
            create_staff(monkeypatch, *arguments, "--superuser")
    ola.refresh_from_db()
    assert not ola.is_staff and ola.check_password("old-one-2026")


def test_without_a_terminal_it_asks_for_password_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--password-stdin"):
        call_command("create_staff", "--username", "kari", "--email", "k@x.example", "--superuser")


def test_the_groups_it_offers_are_the_staff_groups() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {"Support", "Billing", "Privacy officer"}
