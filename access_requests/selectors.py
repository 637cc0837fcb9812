"""Reads for the customer's own pages and API, access-checked.

Invariants:
- `customers.selectors.customer_for_user` and `access_request_get_for_customer` are the only way
  views and the API load customer data: they raise Http404 for anything the signed-in user does
  not own, so another customer's request looks exactly like one that does not exist.
- A user reaches a customer through `Customer.user`, or through `Contact.user` while staff allow
  that contact into the portal (`Contact.portal_access`); revoking access takes effect on the next
  request. Staff users are not customers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from access_requests.models import AccessRequest
from customers.models import Customer
from retention.data_map import Category, Processor, categories
from retention.schedule import ScheduledDeletion
from retention.selectors import customer_deletion_schedule
from retention.windows import RetentionPeriods


def _as_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError) as error:
        raise Http404 from error


def access_request_get_for_customer(*, customer: Customer, request_id: Any) -> AccessRequest:
    """One of the customer's access requests; Http404 when it is not theirs or does not exist."""
    access_request = AccessRequest.objects.filter(pk=_as_uuid(request_id), customer=customer).first()
    if access_request is None:
        raise Http404
    return access_request


def access_requests_for_customer(customer: Customer) -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(customer=customer).order_by("-received_at")


def export_is_downloadable(access_request: AccessRequest, *, now: Any = None) -> bool:
    """A file exists and has not expired: ready or downloaded, with time left."""
    now = now or timezone.now()
    return (
        access_request.status in (AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED)
        and bool(access_request.export_name)
        and access_request.expires_at is not None
        and access_request.expires_at > now
    )


def export_has_expired(access_request: AccessRequest, *, now: Any = None) -> bool:
    """The copy was made but its file is gone, or about to be: the customer must ask again."""
    now = now or timezone.now()
    if access_request.status == AccessRequest.Status.EXPIRED:
        return True
    return (
        access_request.status in (AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED)
        and access_request.expires_at is not None
        and access_request.expires_at <= now
    )


@dataclass(frozen=True)
class TableCount:
    model: str
    name: str
    count: int


@dataclass(frozen=True)
class CategorySummary:
    """What is stored about the customer in one data-map category, and when it goes."""

    category: Category
    tables: list[TableCount]
    deletable_on: date | None
    deletion_reason: str

    @property
    def key(self) -> str:
        return self.category.key

    @property
    def processors(self) -> list[Processor]:
        return self.category.processor_list()

    @property
    def total(self) -> int:
        return sum(table.count for table in self.tables)

    @property
    def holds_rows(self) -> bool:
        """Whether the category has tables here at all (server logs and analytics live elsewhere)."""
        return bool(self.tables)


def stored_data_summary(customer: Customer, *, today: date | None = None) -> list[CategorySummary]:
    """Every data-map category with the customer's row counts (one COUNT per table), purpose,
    legal basis, processors, the retention promise, and the date it will be deleted and why."""
    today = today or timezone.localdate()
    schedule = {
        item.category_key: item for item in customer_deletion_schedule(customer=customer, today=today)
    }
    periods = RetentionPeriods.from_settings()
    summaries = []
    for category in categories():
        tables = [
            TableCount(
                model=table.model,
                name=str(table.description or capfirst(table.model_class._meta.verbose_name_plural)),
                count=table.rows_for_customer(customer.pk).count(),
            )
            for table in category.tables
        ]
        holds_nothing = bool(tables) and not any(table.count for table in tables)
        deletable_on, reason = _deletion(
            category, schedule.get(category.key), customer, periods, holds_nothing
        )
        summaries.append(CategorySummary(category, tables, deletable_on, reason))
    return summaries


def _deletion(
    category: Category,
    scheduled: ScheduledDeletion | None,
    customer: Customer,
    periods: RetentionPeriods,
    holds_nothing: bool,
) -> tuple[date | None, str]:
    if scheduled is not None:
        return scheduled.deletable_on, scheduled.reason
    if category.key == "access_request_exports":
        # The file of a copy goes `export_days` after it was ready; the requests themselves go
        # with the rest of the customer's data.
        expires_at = (
            AccessRequest.objects.filter(
                customer=customer,
                status__in=(AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED),
                expires_at__isnull=False,
            )
            .order_by("-expires_at")
            .values_list("expires_at", flat=True)
            .first()
        )
        if expires_at is not None:
            return timezone.localdate(expires_at), _(
                "your copy's file is deleted %(days)s days after it was ready; the requests "
                "themselves go with your other customer data"
            ) % {"days": periods.export_days}
    if holds_nothing:
        return None, _("nothing is stored about you in this category")
    # Rolling windows (server logs, analytics, the audit trail): every record has its own date.
    return None, _("no single date: each record is deleted when its own period, above, has passed")


# --- Staff ----------------------------------------------------------------------------------------


def access_requests_for_staff(
    *,
    status: str | None = None,
    customer_id: int | None = None,
    overdue: bool | None = None,
    today: date | None = None,
) -> QuerySet[AccessRequest]:
    """Every customer's requests, for staff (the API checks is_staff and the model permission),
    oldest deadline first; `overdue` picks open requests past their due date (index
    access_request_status_due_idx)."""
    requests = AccessRequest.objects.order_by("due_on", "received_at")
    if status:
        requests = requests.filter(status=status)
    if customer_id is not None:
        requests = requests.filter(customer_id=customer_id)
    if overdue is not None:
        late = Q(status__in=AccessRequest.OPEN_STATUSES, due_on__lt=today or timezone.localdate())
        requests = requests.filter(late) if overdue else requests.exclude(late)
    return requests


def access_request_get_for_staff(*, request_id: Any) -> AccessRequest:
    access_request = AccessRequest.objects.filter(pk=_as_uuid(request_id)).first()
    if access_request is None:
        raise Http404
    return access_request
