"""The doors: every route that signs someone in, sends a sign-in code, sets a password or manages a
second factor, and who may use each. /accounts/ is routed from this registry and from nothing else.

Invariants:
- A route of django-allauth that is not a door here is not routed: signing up, e-mail management,
  setting, changing or resetting a password through allauth answer 404 (tests/security/
  test_doors.py walks allauth's own URL configuration and the portal's resolver to hold that).
- Customers sign in with an e-mail code only, and every form that can send a code asks
  `portal.accounts.portal_user_for_email` who gets one: staff and superusers never do, and an
  address staff have changed away from gets none. A code is accepted only while that function
  still answers with the same user for the same address.
- Staff sign in at /admin/login/ with their password and then their authenticator app
  (`portal.security.StaffLoginView`); customers are refused there even if they had a password.
- Customers never have a password, and no door lets anyone set one for them.
- Every staff door refuses a signed-in customer with 404, as if it did not exist.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from allauth.account import views as account_views
from allauth.account.internal.flows.login import record_authentication
from allauth.account.views import ConfirmLoginCodeView, RequestLoginCodeView
from allauth.mfa.base import views as mfa_views
from allauth.mfa.recovery_codes import views as recovery_code_views
from allauth.mfa.totp import views as totp_views
from allauth.mfa.totp.internal import flows as totp_flows
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.generic.edit import FormView

from portal.accounts import portal_user_for_email
from portal.security import is_staff_account


class Audience(enum.StrEnum):
    VISITORS = "visitors"  # not signed in yet: customers asking for or entering a code
    SIGNED_IN = "signed_in"  # whoever is signed in (signing out)
    ANYONE = "anyone"  # signs nobody in (a page allauth shows)
    NOBODY = "nobody"  # routed only so allauth can name it; answers 404 to everyone
    STAFF = "staff"  # staff only; a signed-in customer gets 404


@dataclass(frozen=True)
class Door:
    name: str  # the URL name (namespaced for the admin's)
    route: str  # the path under `prefix`
    audience: Audience
    who: str  # who may use it, and how: the sentence tests/security/test_doors.py holds it to
    view: Callable[..., HttpResponse] | None = None  # None: routed by the admin site itself
    prefix: str = "accounts/"
    sends_code: bool = False  # a form that can e-mail a sign-in code

    @property
    def path(self) -> str:
        return f"/{self.prefix}{self.route}"


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A door for staff: a signed-in customer is told it does not exist. (Visitors go on: the views
    send them to sign in, or need a sign-in in progress.)"""

    @wraps(view)
    def door(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not is_staff_account(user):
            raise Http404
        return view(request, *args, **kwargs)

    return door


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    raise Http404


class CustomerSignInView(RequestLoginCodeView):
    """/accounts/login/: the customer's sign-in page. It asks for the address and sends a code
    through the portal's form (settings.ACCOUNT_FORMS), as /accounts/login/code/ does; allauth's
    own login form, which e-mails a code to any user it finds, is never used."""

    template_name = "account/login.html"


class CustomerConfirmLoginCodeView(ConfirmLoginCodeView):
    """Entering (or re-sending) a code: only while the address still signs in the same user. Staff
    may have changed the customer's address, or taken a contact's access away, since the code was
    asked for; then the code signs nobody in and no new one is sent."""

    def _still_the_same_user(self) -> bool:
        user = self._process.user
        email = self._process.state.get("email")
        if user is None:  # an unknown address: there is no code to accept or resend
            return True
        current = portal_user_for_email(email) if email else None
        return current is not None and current.pk == user.pk

    def _void(self) -> HttpResponse:
        self._process.abort()
        messages.error(self.request, _("The code is no longer valid. Please ask for a new one."))
        return HttpResponseRedirect(reverse("account_request_login_code"))

    def _verify_form_valid(self, form: Any) -> HttpResponse:
        if not self._still_the_same_user():
            return self._void()
        response: HttpResponse = super()._verify_form_valid(form)
        return response

    def _resend_form_valid(self, form: Any) -> HttpResponse:
        if not self._still_the_same_user():
            return self._void()
        response: HttpResponse = super()._resend_form_valid(form)
        return response


class StaffActivateTOTPView(totp_views.ActivateTOTPView):
    """Setting up the authenticator app: the code entered to activate it is this sign-in's second
    factor, so the employee is not asked for another code before the admin (allauth records the
    activation as no authentication at all)."""

    def form_valid(self, form: Any) -> HttpResponse:
        authenticator, recovery_codes = totp_flows.activate_totp(self.request, form)
        self.did_generate_recovery_codes = bool(recovery_codes)
        record_authentication(
            self.request, self.request.user, "mfa", type=authenticator.type, id=authenticator.pk
        )
        response: HttpResponse = FormView.form_valid(self, form)
        return response


CUSTOMER_CODE = (
    "customers (and contacts given portal access) by e-mail code only: the code goes to the address "
    "portal_user_for_email accepts, never to staff, a superuser, an inactive user or a former address"
)

DOORS: tuple[Door, ...] = (
    # --- Customers ------------------------------------------------------------------------------
    Door(
        "account_login",
        "login/",
        Audience.VISITORS,
        CUSTOMER_CODE,
        CustomerSignInView.as_view(),
        sends_code=True,
    ),
    Door(
        "account_request_login_code",
        "login/code/",
        Audience.VISITORS,
        CUSTOMER_CODE,
        account_views.request_login_code,
        sends_code=True,
    ),
    Door(
        "account_confirm_login_code",
        "login/code/confirm/",
        Audience.VISITORS,
        "the visitor who asked for the code, while the address still signs in the same customer user; "
        "re-sending goes to that address only",
        CustomerConfirmLoginCodeView.as_view(),
        sends_code=True,
    ),
    Door(
        "account_logout", "logout/", Audience.SIGNED_IN, "whoever is signed in, by POST", account_views.logout
    ),
    Door(
        "account_inactive",
        "inactive/",
        Audience.ANYONE,
        "nobody signs in here: the page shown when an inactive user's sign-in is refused",
        account_views.account_inactive,
    ),
    Door(
        "account_signup",
        "signup/",
        Audience.NOBODY,
        "nobody signs up (staff create customers): routed only because allauth builds a sign-up link "
        "for its e-mail to an unknown address (the portal's e-mail leaves it out); 404 for everyone",
        not_found,
    ),
    # --- Staff: the second factor and the password prompts allauth's own flows need ---------------
    Door(
        "account_reauthenticate",
        "reauthenticate/",
        Audience.STAFF,
        "signed-in staff confirming their password before allauth changes their second factor",
        staff_only(account_views.reauthenticate),
    ),
    Door(
        "mfa_index",
        "2fa/",
        Audience.STAFF,
        "signed-in staff: their two-factor settings",
        staff_only(mfa_views.index),
    ),
    Door(
        "mfa_authenticate",
        "2fa/authenticate/",
        Audience.STAFF,
        "staff half-way through /admin/login/: the authenticator-app code after the password",
        staff_only(mfa_views.authenticate),
    ),
    Door(
        "mfa_reauthenticate",
        "2fa/reauthenticate/",
        Audience.STAFF,
        "signed-in staff whose session has not used the authenticator app yet",
        staff_only(mfa_views.reauthenticate),
    ),
    Door(
        "mfa_activate_totp",
        "2fa/totp/activate/",
        Audience.STAFF,
        "signed-in staff setting up their authenticator app",
        staff_only(StaffActivateTOTPView.as_view()),
    ),
    Door(
        "mfa_deactivate_totp",
        "2fa/totp/deactivate/",
        Audience.STAFF,
        "signed-in staff replacing their authenticator app (nothing else opens until a new one is set up)",
        staff_only(totp_views.deactivate_totp),
    ),
    Door(
        "mfa_view_recovery_codes",
        "2fa/recovery-codes/",
        Audience.STAFF,
        "signed-in staff: their recovery codes",
        staff_only(recovery_code_views.view_recovery_codes),
    ),
    Door(
        "mfa_generate_recovery_codes",
        "2fa/recovery-codes/generate/",
        Audience.STAFF,
        "signed-in staff: new recovery codes",
        staff_only(recovery_code_views.generate_recovery_codes),
    ),
    Door(
        "mfa_download_recovery_codes",
        "2fa/recovery-codes/download/",
        Audience.STAFF,
        "signed-in staff: their recovery codes as a file",
        staff_only(recovery_code_views.download_recovery_codes),
    ),
    # --- The admin site's own (routed by PortalAdminSite) ----------------------------------------
    Door(
        "admin:login",
        "login/",
        Audience.STAFF,
        "staff with their password, then their authenticator app; customers are refused even with a "
        "password, and no code is ever sent from here",
        prefix="admin/",
    ),
    Door("admin:logout", "logout/", Audience.STAFF, "signed-in staff, by POST", prefix="admin/"),
    Door(
        "admin:password_change",
        "password_change/",
        Audience.STAFF,
        "signed-in staff (with two-factor) changing their own password",
        prefix="admin/",
    ),
    Door(
        "admin:password_change_done",
        "password_change/done/",
        Audience.STAFF,
        "signed-in staff, after changing their password",
        prefix="admin/",
    ),
    Door(
        "admin:auth_user_password_change",
        "auth/user/<id>/password/",
        Audience.STAFF,
        "staff with auth.change_user (the superuser), for a staff user only: a customer's user has no "
        "password and cannot be given one",
        prefix="admin/",
    ),
)

DOORS_BY_NAME = {door.name: door for door in DOORS}


def account_urlpatterns() -> list[URLPattern]:
    """What /accounts/ routes: the doors under it, and nothing else."""
    return [
        path(door.route, door.view, name=door.name)
        for door in DOORS
        if door.prefix == "accounts/" and door.view
    ]
