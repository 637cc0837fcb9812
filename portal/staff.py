"""Staff accounts made from the command line: the first employee of a new installation, and any
later one an operator prefers to make there rather than in the admin.

Invariants:
- A staff account is made with a password that passes AUTH_PASSWORD_VALIDATORS, and never changes
  an existing account (same username or e-mail): it refuses instead.
- It is made without a second factor on purpose: `portal.security.StaffTwoFactorMiddleware` sends
  every staff account without an authenticator app to set one up at its first sign-in, before any
  admin page opens, so the account is usable only with two-factor authentication.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction


class StaffRefused(ValueError):
    """The account cannot be made as asked; the message says why."""


@transaction.atomic
def staff_create(
    *, username: str, email: str, password: str, group_names: Sequence[str], superuser: bool = False
) -> User:
    """A new staff account in `group_names` (at least one unless `superuser`)."""
    user_model = get_user_model()
    if not group_names and not superuser:
        raise StaffRefused("name at least one group (--group), or make a superuser (--superuser)")
    groups = list(Group.objects.filter(name__in=group_names))
    unknown = sorted(set(group_names) - {group.name for group in groups})
    if unknown:
        known = ", ".join(Group.objects.order_by("name").values_list("name", flat=True))
        raise StaffRefused(f"no group named {', '.join(unknown)}; the groups are: {known}")
    if user_model.objects.filter(username=username).exists():
        raise StaffRefused(f"a user named {username} exists already")
    if user_model.objects.filter(email__iexact=email).exists():
        raise StaffRefused(f"a user with the e-mail address {email} exists already")
    user = user_model(username=username, email=email, is_staff=True, is_superuser=superuser)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise StaffRefused(" ".join(error.messages)) from None
    user.set_password(password)
    user.save()
    user.groups.set(groups)
    return user
