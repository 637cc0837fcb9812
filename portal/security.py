"""Who reaches what, and for how long: staff two-factor authentication, session lifetimes, signing
out everywhere, and no caching of pages with personal data.

Invariants:
- A staff user or superuser reaches nothing but the sign-in and two-factor pages until they have an
  authenticator app (TOTP) and this very session was authenticated with it (allauth records the
  methods a session used). A password alone never shows customer data, in the admin or the API.
- /admin/ signs in through allauth (`StaffLoginView`, the admin site's login view in
  portal/admin_site.py), so its rate limits and two-factor step apply; Django's own admin login
  form is never shown.
- A session ends 30 minutes after the last request of a staff user, 2 hours after a customer's, and
  12 hours after signing in for everyone (settings.SESSION_*_TIMEOUT).
- Signing out ends every session of that user; so does deactivating a user. The sessions are found
  through audit.UserSession, whose rows the database deletes along with each session and user.
- Every response to a signed-in user, and every response under the personal-data paths, is sent
  with `Cache-Control: no-store`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from allauth.account.authentication import get_authentication_records
from allauth.account.forms import LoginForm, PasswordField
from allauth.account.views import LoginView
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from audit.models import UserSession
from portal import logs

# Paths whose pages show personal data whoever asks (the admin, the customer's pages, the API, the
# account pages with the signed-in address).
PERSONAL_DATA_PREFIXES = ("/admin/", "/my-data/", "/api/", "/accounts/")
# What a staff user without two-factor authentication may still reach: signing in and out, setting
# up the authenticator app, static files, the health check and the language switch.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/admin/logout/", "/static/", "/healthz", "/i18n/")
API_PREFIX = "/api/"

SIGNED_IN_AT = "portal.signed_in_at"
LAST_SEEN_AT = "portal.last_seen_at"
REGISTERED_KEY = "portal.registered_session_key"
# The last-seen time is written at most this often, so a busy page does not write its session row
# on every request; the idle timeout is therefore exact to within this many seconds.
TOUCH_EVERY_SECONDS = 60


def is_staff_account(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.is_superuser))


def has_authenticator_app(user: Any) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


def session_used_second_factor(request: HttpRequest, user: Any) -> bool:
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, user))


def _with_next(url: str, request: HttpRequest) -> str:
    return f"{url}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}"


class StaffTwoFactorMiddleware:
    """Sends staff without a second factor in this session to set one up or to enter a code."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if is_staff_account(user) and not request.path.startswith(MFA_EXEMPT_PREFIXES):
            if not has_authenticator_app(user):
                return self._refuse(request, user, reason="no_authenticator", url_name="mfa_activate_totp")
            if not session_used_second_factor(request, user):
                return self._refuse(request, user, reason="no_second_factor", url_name="mfa_reauthenticate")
        return self.get_response(request)

    def _refuse(self, request: HttpRequest, user: Any, *, reason: str, url_name: str) -> HttpResponse:
        logs.sign_in_refused(reason=f"staff_{reason}", user_id=user.pk)
        if request.path.startswith(API_PREFIX):
            response: HttpResponse = JsonResponse(
                {"detail": _("Staff must sign in with two-factor authentication first.")}, status=403
            )
        else:
            response = HttpResponseRedirect(_with_next(reverse(url_name), request))
        add_never_cache_headers(response)
        return response


# --- Session lifetimes and the registry of a user's sessions ---------------------------------------


def _idle_limit(user: Any) -> int:
    if is_staff_account(user):
        return int(settings.SESSION_IDLE_TIMEOUT_STAFF)
    return int(settings.SESSION_IDLE_TIMEOUT_CUSTOMER)


def register_session(request: HttpRequest, user: Any) -> None:
    """Note that this session belongs to `user`, once per session key (a key changes at sign-in,
    and when a password change cycles it)."""
    session = request.session
    if session.session_key is None:
        session.save()
    key = session.session_key
    if session.get(REGISTERED_KEY) == key:
        return
    try:
        with transaction.atomic():
            UserSession.objects.get_or_create(session_id=key, defaults={"user_id": user.pk})
    except IntegrityError:  # the session row went away meanwhile; nothing left to end later
        return
    session[REGISTERED_KEY] = key


def start_session_clock(request: HttpRequest, user: Any) -> None:
    now = time.time()
    request.session[SIGNED_IN_AT] = now
    request.session[LAST_SEEN_AT] = now
    register_session(request, user)


def end_all_sessions(user: Any) -> int:
    """Delete every session of `user` (their registry rows go with them, in the database)."""
    keys = UserSession.objects.filter(user_id=user.pk).values("session_id")
    deleted, _by_model = Session.objects.filter(session_key__in=keys).delete()
    return deleted


class SessionLifetimeMiddleware:
    """Ends a session after its idle or absolute timeout, and keeps its last-seen time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            self._check(request, user)
        return self.get_response(request)

    def _check(self, request: HttpRequest, user: Any) -> None:
        session = request.session
        now = time.time()
        signed_in_at = session.get(SIGNED_IN_AT)
        last_seen_at = session.get(LAST_SEEN_AT)
        if not isinstance(signed_in_at, float | int) or not isinstance(last_seen_at, float | int):
            # A session signed in before these rules existed: its clock starts now.
            start_session_clock(request, user)
            return
        reason = None
        if now - signed_in_at >= settings.SESSION_ABSOLUTE_TIMEOUT:
            reason = "absolute_timeout"
        elif now - last_seen_at >= _idle_limit(user):
            reason = "idle_timeout"
        if reason is not None:
            # Only this session: a timeout on one device does not sign the user out of the others.
            session.flush()
            request.user = AnonymousUser()
            logs.logger.info("session_ended", reason=reason, user_id=user.pk)
            messages.info(
                request, _("You were signed out because the session expired. Please sign in again.")
            )
            return
        if now - last_seen_at >= TOUCH_EVERY_SECONDS:
            session[LAST_SEEN_AT] = now
        register_session(request, user)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on everything a signed-in user sees and on the personal-data paths."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if signed_in or request.path.startswith(PERSONAL_DATA_PREFIXES):
            add_never_cache_headers(response)
        return response


# --- Signal receivers (connected in PortalConfig.ready) ------------------------------------------


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    # django.contrib.auth.login() has already given the session a fresh key.
    if request is not None and hasattr(request, "session"):
        start_session_clock(request, user)


def on_user_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        end_all_sessions(user)
        logs.logger.info("signed_out", user_id=user.pk)


def on_user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # post_save only: the customer purge deletes users, and a delete receiver on User would make
    # Django fetch every row it deletes (DESIGN.md, "What is known about speed").
    if not created and not instance.is_active:
        ended = end_all_sessions(instance)
        if ended:
            logs.logger.info("sessions_ended_on_deactivation", user_id=instance.pk, sessions=ended)


class StaffLoginForm(LoginForm):
    """allauth's sign-in form with a password. The portal's own sign-in is passwordless (customers
    get codes; ACCOUNT_SIGNUP_FIELDS has no password, so allauth drops the field); staff have one.

    The password is required: without one allauth's form would e-mail a sign-in code instead, and
    staff never receive codes. A user who is not staff is refused with the answer a wrong password
    gets, even if they had a password (customers have none, portal/doors.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"] = PasswordField(label=_("Password"), autocomplete="current-password")
        self.fields["password"].required = True

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()
        user: Any = getattr(self, "user", None)
        if user is not None and not is_staff_account(user):
            self.user = None
            logs.sign_in_refused(reason="not_staff")
            raise get_adapter(self.request).validation_error("email_password_mismatch")
        return cleaned_data


class StaffLoginView(LoginView):
    """allauth's password sign-in, shown at /admin/login/ in the admin's look: its rate limits,
    login stages (the two-factor step) and session handling apply to staff as to everyone."""

    template_name = "admin/login.html"
    form_class = StaffLoginForm
    admin_site: AdminSite | None = None

    def get_form_class(self) -> type[StaffLoginForm]:
        return StaffLoginForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.admin_site is not None:
            context.update(self.admin_site.each_context(self.request))
        context.update({"title": _("Log in"), "app_path": self.request.get_full_path()})
        return context
