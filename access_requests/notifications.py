"""E-mails about access requests: received, ready, failed, extended, rejected.

- An e-mail links to the portal, never to the file and never with the data: the customer signs in
  to download. Staff get ids and a link to the admin, no personal data.
- Customers have no language preference stored, so a customer's e-mail is Norwegian with an English
  copy below it (the portal's languages); staff get it in the portal's language.
- Each function loads the request by id, returns quietly when it is gone, and never raises when the
  mail server fails: the change it reports is already committed and shown on the portal page; the
  failure is logged at ERROR for operations to see. Each returns whether a message was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.mail import EmailMultiAlternatives, mail_managers
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from access_requests.models import AccessRequest

logger = logging.getLogger(__name__)

CUSTOMER_LANGUAGES = ("nb", "en")
STAFF_GROUP = "Privacy officer"
TEMPLATE_DIRECTORY = "emails/access_requests"

SUBJECTS: dict[str, Promise] = {
    "received": _("We have received your request for a copy of your data"),
    "ready": _("Your copy of your data is ready"),
    "failed": _("Your copy of your data is delayed"),
    "extended": _("We need more time for your copy of your data"),
    "rejected": _("Your request for a copy of your data"),
    "failed_staff": _("Export failed for access request %(reference)s"),
    "erasure_code": _("Your code to confirm the deletion of your data"),
    "erasure_received": _("We have received your request to delete your data"),
    "erasure_done": _("Your data has been deleted: the receipt"),
    "erasure_rejected": _("Your request to delete your data"),
}


def portal_url(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def request_page_url(access_request: AccessRequest) -> str:
    try:
        path = access_request.get_absolute_url()
    except NoReverseMatch:  # the customer pages are not mounted (a staff-only deployment)
        path = str(settings.LOGIN_REDIRECT_URL)
    return portal_url(path)


def _load(access_request_id: Any) -> AccessRequest | None:
    return AccessRequest.objects.select_related("customer").filter(pk=access_request_id).first()


def _render(
    kind: str,
    context: dict[str, Any],
    languages: tuple[str, ...],
    per_language: Callable[[], dict[str, Any]] | None = None,
) -> tuple[str, str, str]:
    """Subject, text and HTML body, each language after the other. `per_language` adds what must
    be worded in each language itself (an erasure's receipt), called with that language active."""
    subjects, texts, sections = [], [], []
    shared = context
    for language in languages:
        with translation.override(language):
            context = {**shared, **per_language()} if per_language else shared
            subjects.append(str(SUBJECTS[kind]) % context)
            texts.append(render_to_string(f"{TEMPLATE_DIRECTORY}/{kind}.txt", context).strip())
            sections.append(
                {"language": language, "html": render_to_string(f"{TEMPLATE_DIRECTORY}/{kind}.html", context)}
            )
    subject = " / ".join(dict.fromkeys(subjects))  # one subject when the languages say the same
    text = "\n\n----------------------------------------\n\n".join(texts) + "\n"
    html = render_to_string(
        f"{TEMPLATE_DIRECTORY}/layout.html",
        {"sections": sections, "subject": subject, "company_name": settings.COMPANY_NAME},
    )
    return subject, text, html


def _send(
    *,
    kind: str,
    context: dict[str, Any],
    to: list[str],
    languages: tuple[str, ...],
    per_language: Callable[[], dict[str, Any]] | None = None,
) -> bool:
    if not to:
        return False
    subject, text, html = _render(kind, context, languages, per_language)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=to
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception as error:
        # The kind of error only: an SMTP refusal names the recipient's address.
        logger.error(
            "could not send the %s e-mail for request %s: %s",
            kind,
            context["reference"],
            type(error).__name__,
        )
        return False
    return True


def _notify_customer(kind: str, access_request_id: Any) -> bool:
    access_request = _load(access_request_id)
    if access_request is None:
        return False
    context = {
        "access_request": access_request,
        "reference": str(access_request.pk)[:8],
        "company_name": settings.COMPANY_NAME,
        "page_url": request_page_url(access_request),
    }
    return _send(kind=kind, context=context, to=[access_request.customer.email], languages=CUSTOMER_LANGUAGES)


def notify_received(*, access_request_id: Any) -> bool:
    return _notify_customer("received", access_request_id)


def notify_ready(*, access_request_id: Any) -> bool:
    return _notify_customer("ready", access_request_id)


def notify_extended(*, access_request_id: Any) -> bool:
    return _notify_customer("extended", access_request_id)


def notify_rejected(*, access_request_id: Any) -> bool:
    return _notify_customer("rejected", access_request_id)


def staff_recipients() -> list[str]:
    group = Group.objects.filter(name=STAFF_GROUP).first()
    if group is None:
        return []
    emails = group.user_set.filter(is_active=True).exclude(email="").values_list("email", flat=True)
    return sorted(set(emails))


def notify_failed(*, access_request_id: Any) -> bool:
    """Tell the customer their copy is delayed, and the privacy officers (or, when the group has
    nobody with an e-mail address, the MANAGERS) that a build failed for good."""
    customer_told = _notify_customer("failed", access_request_id)
    access_request = _load(access_request_id)
    if access_request is None:
        return customer_told
    context = {
        "access_request": access_request,
        "reference": str(access_request.pk)[:8],
        "company_name": settings.COMPANY_NAME,
        "admin_url": portal_url(
            reverse("admin:access_requests_accessrequest_change", args=[access_request.pk])
        ),
    }
    language = (settings.LANGUAGE_CODE,)
    recipients = staff_recipients()
    if recipients:
        return (
            _send(kind="failed_staff", context=context, to=recipients, languages=language) and customer_told
        )
    subject, text, html = _render("failed_staff", context, language)
    if not settings.MANAGERS:
        logger.error(
            "access request %s failed and no privacy officer or manager can be told", context["reference"]
        )
        return False
    try:
        mail_managers(subject, text, html_message=html)
    except Exception as error:
        logger.error(
            "could not tell the managers that access request %s failed: %s",
            context["reference"],
            type(error).__name__,
        )
        return False
    return customer_told


# --- Erasure on request ------------------------------------------------------------------------


def _erasure_context(erasure_request: Any) -> dict[str, Any]:
    return {
        "erasure_request": erasure_request,
        "reference": str(erasure_request.pk)[:8],
        "company_name": settings.COMPANY_NAME,
    }


def notify_erasure_code(*, erasure_request_id: Any, code: str, to: str) -> bool:
    """The code she confirms her request with (valid 15 minutes)."""
    from access_requests.models import ErasureRequest

    erasure_request = ErasureRequest.objects.filter(pk=erasure_request_id).first()
    if erasure_request is None:
        return False
    context = {**_erasure_context(erasure_request), "code": code}
    return _send(kind="erasure_code", context=context, to=[to] if to else [], languages=CUSTOMER_LANGUAGES)


def notify_erasure_received(*, erasure_request_id: Any, token: str, to: str) -> bool:
    """Confirmed: when we answer by, and the link of the page that shows the request to its receipt."""
    from access_requests.models import ErasureRequest

    erasure_request = ErasureRequest.objects.filter(pk=erasure_request_id).first()
    if erasure_request is None:
        return False
    path = reverse("access_requests:erasure_receipt", kwargs={"token": token})
    context = {**_erasure_context(erasure_request), "page_url": portal_url(path)}
    return _send(
        kind="erasure_received", context=context, to=[to] if to else [], languages=CUSTOMER_LANGUAGES
    )


def notify_erasure_done(*, erasure_request_id: Any, to: list[str]) -> bool:
    """The receipt itself, to the addresses read before her data went (the page of the link sent
    when she confirmed shows it too)."""
    from access_requests.models import ErasureRequest
    from access_requests.receipts import receipt_summary

    erasure_request = ErasureRequest.objects.filter(pk=erasure_request_id).first()
    if erasure_request is None:
        return False
    return _send(
        kind="erasure_done",
        context=_erasure_context(erasure_request),
        to=to,
        languages=CUSTOMER_LANGUAGES,
        per_language=lambda: {"summary": receipt_summary(erasure_request.receipt)},
    )


def notify_erasure_rejected(*, erasure_request_id: Any) -> bool:
    from access_requests.models import ErasureRequest

    erasure_request = ErasureRequest.objects.select_related("customer").filter(pk=erasure_request_id).first()
    if erasure_request is None or erasure_request.customer is None:
        return False
    return _send(
        kind="erasure_rejected",
        context=_erasure_context(erasure_request),
        to=[erasure_request.customer.email],
        languages=CUSTOMER_LANGUAGES,
    )
