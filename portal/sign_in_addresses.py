"""A changed sign-in address signs in nobody.

Invariants:
- The address a record signs in with is a customer's e-mail, or a contact's while she has portal
  access (`sign_in_address`). When it changes, or a contact loses her access, every session of
  the record's user ends in the transaction that saves the change: whoever was signed in through
  the old address (an attacker who had it, say) is out at once.
- Both addresses are told when an address changes, after the change is committed: the old one
  without the new value (whoever holds the old mailbox learns nothing of the new one), the new
  one that it now signs in.
- It runs on every save of a Customer or Contact (receivers connected in PortalConfig.ready), so
  no screen or service has to remember it; a save that names its fields and leaves out the
  address costs nothing. The admin records who did it (portal/admin_access.py).
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from customers.models import Contact, Customer
from portal import logs
from portal.security import end_all_sessions

logger = logging.getLogger(__name__)

ADDRESS_FIELDS = {"email", "portal_access"}
PREVIOUS = "_portal_sign_in_address_before"
CUSTOMER_LANGUAGES = ("nb", "en")


def sign_in_address(holder: Customer | Contact) -> str | None:
    """The address this record signs in with, lower-cased, or None when it signs in nobody."""
    if isinstance(holder, Contact) and not holder.portal_access:
        return None
    return holder.email.strip().lower() or None


def on_holder_pre_save(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and not ADDRESS_FIELDS & set(update_fields)):
        return
    previous = sender.objects.filter(pk=instance.pk).first()
    if previous is not None:
        setattr(instance, PREVIOUS, (sign_in_address(previous),))


def on_holder_post_save(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    saved = instance.__dict__.pop(PREVIOUS, None)
    if created or saved is None:
        return
    (before,) = saved
    after = sign_in_address(instance)
    if before == after or before is None:
        return  # unchanged, or access given: nobody was signed in through it
    sign_in_address_changed(holder=instance, before=before, after=after)


def sign_in_address_changed(*, holder: Customer | Contact, before: str, after: str | None) -> None:
    """End the sessions of the record's user; tell both addresses once the change is committed."""
    user_id = holder.user_id
    if user_id is not None:
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None:
            ended = end_all_sessions(user)
            # allauth's table and the user's own address follow the record now, not at the next
            # sign-in: nothing may still find this user by the old address.
            EmailAddress.objects.filter(user_id=user_id).exclude(email=after or "").delete()
            if after is not None and user.email != after:
                user.email = after
                user.save(update_fields=["email"])
            logs.logger.info("sign_in_address_changed", user_id=user_id, sessions_ended=ended)
    if after is None:
        return  # a contact's access was taken away: there is no new address to tell
    transaction.on_commit(lambda: _tell_both(before=before, after=after))


def _tell_both(*, before: str, after: str) -> None:
    try:
        _send("old_address", to=before)
        _send("new_address", to=after)
    except Exception:  # the change is committed; a mail server down must not undo or hide it
        logger.exception("sign-in address change: the notice could not be sent")


def _send(kind: str, *, to: str) -> None:
    context = {"company_name": settings.COMPANY_NAME, "contact_address": settings.DEFAULT_FROM_EMAIL}
    subjects, bodies = [], []
    for language in CUSTOMER_LANGUAGES:
        with translation.override(language):
            subjects.append(
                _("The address you sign in with was changed")
                if kind == "old_address"
                else _("This address now signs you in")
            )
            bodies.append(render_to_string(f"emails/sign_in/{kind}.txt", context).strip())
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " / ".join(dict.fromkeys(subjects))
    body = "\n\n----------------------------------------\n\n".join(bodies) + "\n"
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
