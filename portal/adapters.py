"""How django-allauth behaves in the portal."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
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

    def validation_error(self, code: str, *args: Any) -> ValidationError:
        # Every refused sign-in is a security event: log what kind it was, never the address.
        if code in SIGN_IN_REFUSALS:
            logs.sign_in_refused(reason=SIGN_IN_REFUSALS[code])
        return super().validation_error(code, *args)
