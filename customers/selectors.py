"""Reads of customer records that the portal's pages start from, access-checked.

Invariant: `customer_for_user` is the only way a customer's own pages (the access requests, the
analytics id page, the API) find whose data the signed-in user may see; anyone else gets a 404.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404

from customers.models import Customer


def customer_for_user(user: Any) -> Customer:
    """The customer whose data `user` may see; Http404 when there is none."""
    if not getattr(user, "is_authenticated", False) or user.is_staff or user.is_superuser:
        raise Http404
    # Both lookups use a unique index (customers_customer.user_id, customers_contact.user_id).
    customer = Customer.objects.filter(user_id=user.pk).first()
    if customer is None:
        customer = Customer.objects.filter(contacts__user_id=user.pk, contacts__portal_access=True).first()
    if customer is None:
        raise Http404
    return customer
