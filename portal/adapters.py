"""How django-allauth behaves in the portal."""

from __future__ import annotations

import time
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from portal import logs

# allauth's error codes that mean a sign-in was refused, and what the security log calls them.
# (A wrong password is logged by the `user_login_failed` signal, see portal/logs.py.)
SIGN_IN_REFUSALS = {
    "too_many_login_attempts": "rate_limited",
    "incorrect_code": "incorrect_code",
    "account_inactive": "account_inactive",
}


class PortalAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Customers are created by staff (and so are their sign-ins); nobody signs up.
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # allauth asks for the password again before a second factor is set up or its recovery
        # codes are shown, even seconds after the password was given: a new employee was asked
        # twice in one sign-in. A sign-in (password or authenticator app) within the
        # re-authentication window is as fresh as the password asked again.
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        request = getattr(self, "request", None) or context.request
        return not _authenticated_within(request, seconds=account_settings.REAUTHENTICATION_TIMEOUT)

    def validation_error(self, code: str, *args: Any) -> ValidationError:
        # Every refused sign-in is a security event: log what kind it was, never the address.
        if code in SIGN_IN_REFUSALS:
            logs.sign_in_refused(reason=SIGN_IN_REFUSALS[code])
        return super().validation_error(code, *args)


def _authenticated_within(request: HttpRequest | None, *, seconds: int) -> bool:
    if request is None or not request.user.is_authenticated:
        return False
    now = time.time()
    return any(
        record.get("method") in {"password", "mfa"} and now - float(record.get("at", 0)) < seconds
        for record in get_authentication_records(request, request.user)
    )
