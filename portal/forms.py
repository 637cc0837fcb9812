"""Forms the portal puts in place of django-allauth's (settings.ACCOUNT_FORMS)."""

from __future__ import annotations

from allauth.account.forms import RequestLoginCodeForm

from portal.accounts import portal_user_for_email


class CustomerLoginCodeForm(RequestLoginCodeForm):
    """Asking for a sign-in code: only customers (and contacts staff let in) get one.

    allauth looks the address up among existing users; it has no adapter hook for that lookup, so
    the form is the place. allauth's own checks run first (the rate limit per address), then the
    portal decides who signs in, making the user on first use. An unknown address gets
    `_user = None`, which allauth answers exactly as a known one (PREVENT_ENUMERATION)."""

    def clean_email(self) -> str:
        email: str = super().clean_email()
        self._user = portal_user_for_email(email) if email else None
        return email
