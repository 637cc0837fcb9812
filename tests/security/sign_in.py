"""Signing staff in for tests the way they sign in for real: with a second factor.

/admin/ and the staff API refuse a staff session that did not use two-factor authentication, so a
bare `client.force_login(staff_user)` is sent to set it up. Use `sign_in_with_second_factor` (or the
`mfa_login` fixture of tests/conftest.py) instead.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt
from django.http import HttpRequest
from django.test import Client


def authenticator_app_of(user: Any) -> Authenticator:
    """The user's TOTP authenticator, set up now if they have none (as allauth's activation does)."""
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        authenticator = TOTP.activate(user, generate_totp_secret()).instance
    return authenticator


def code_for_secret(secret: str) -> str:
    """The code an authenticator app with this secret shows now (allauth's own TOTP arithmetic)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


def current_code(authenticator: Authenticator) -> str:
    """The code the user's authenticator app shows now."""
    return code_for_secret(decrypt(authenticator.data["secret"]))


def sign_in_with_second_factor(client: Client, user: Any) -> Authenticator:
    """Sign `user` in on `client` with an authenticator app set up, in a session that allauth
    records as authenticated with it (what its two-factor step records)."""
    authenticator = authenticator_app_of(user)
    client.force_login(user)
    request = HttpRequest()
    request.session = client.session
    record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)
    request.session.save()
    return authenticator
