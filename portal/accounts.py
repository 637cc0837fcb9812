"""Who may sign in to the customer portal, and as which user.

Customers have no passwords: they ask for a one-time code by e-mail (django-allauth's login by
code). Staff create customers, not their sign-ins, so the user behind an address is made the first
time a code is asked for.

Invariants:
- Only customers sign in here: the e-mail address of a Customer, or of a Contact that staff gave
  portal access. Staff users and inactive users are never returned: staff sign in at /admin/.
- An address that belongs to more than one customer signs in nobody, because we could not tell
  whose data to show; it is logged (by record ids, never the address) for staff to sort out.
- The answer for an unknown address is None, and the caller answers it exactly as a known one
  (ACCOUNT_PREVENT_ENUMERATION): this module never raises for "unknown".
- Usernames name the record (customer-17, contact-42), never the person.
- A customer's user has no usable password (customers sign in by code only, portal/doors.py): one
  made here never gets one, and one that had a password loses it the next time a code is asked for.
"""

from __future__ import annotations

import logging
import uuid

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from customers.models import Contact, Customer

logger = logging.getLogger(__name__)


@transaction.atomic
def portal_user_for_email(email: str) -> User | None:
    """The portal user of the customer (or contact with portal access) that has this e-mail
    address, made on first use with a verified allauth EmailAddress; None when nobody may sign in
    with it."""
    email = email.strip().lower()
    if not email:
        return None
    # Case-insensitive match: the addresses are stored as staff typed them. The rows are locked so
    # two code requests at once make one user, not two.
    customers = list(Customer.objects.select_for_update().filter(email__iexact=email))
    customer_ids = {customer.pk for customer in customers}
    contacts = [
        contact
        for contact in Contact.objects.select_for_update().filter(email__iexact=email, portal_access=True)
        # A contact who shares the customer's own address signs in as the customer.
        if contact.customer_id not in customer_ids
    ]
    holders: list[Customer | Contact] = [*customers, *contacts]
    if len({_customer_id(holder) for holder in holders}) > 1:
        logger.warning(
            "sign-in refused: one e-mail address belongs to customers %s",
            sorted({_customer_id(holder) for holder in holders}),
        )
        return None
    if not holders:
        return None
    holder = holders[0]
    user = holder.user
    if user is None:
        user = _new_user(username=_username(holder), email=email)
        holder.user = user
        holder.save(update_fields=["user"])
    elif user.is_staff or user.is_superuser or not user.is_active:
        return None
    if user.password and user.has_usable_password():
        # A password given before customers lost theirs: nothing may sign her in with it.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    _keep_email_in_step(user, email)
    return user


def _customer_id(holder: Customer | Contact) -> int:
    return holder.pk if isinstance(holder, Customer) else holder.customer_id


def _username(holder: Customer | Contact) -> str:
    prefix = "customer" if isinstance(holder, Customer) else "contact"
    return f"{prefix}-{holder.pk}"


def _new_user(*, username: str, email: str) -> User:
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        username = f"{username}-{uuid.uuid4().hex[:8]}"
    user: User = user_model.objects.create_user(username=username, email=email)  # no usable password
    return user


def _keep_email_in_step(user: User, email: str) -> None:
    """The user's address follows the record's: staff may have changed it since the last sign-in."""
    if user.email != email:
        user.email = email
        user.save(update_fields=["email"])
    EmailAddress.objects.filter(user=user).exclude(email=email).delete()
    # allauth keeps a verified address unique; an employee with the same address keeps theirs.
    taken = EmailAddress.objects.filter(email__iexact=email, verified=True).exclude(user=user).exists()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": not taken, "primary": True}
    )
