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

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from access_requests.models import AccessRequest, ErasureRequest
from customers.models import Customer
from retention.data_map import Category, Processor, categories
from retention.data_map import tables as data_map_tables
from retention.schedule import ScheduledDeletion
from retention.selectors import customers_with_deletion_facts, deletion_schedule_of
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


def _row_count(rows: QuerySet[Any]) -> Subquery:
    """`COUNT(*)` of `rows` as a scalar subquery: `Func`, not the `Count` aggregate, so the
    subquery has no GROUP BY and always answers one row."""
    return Subquery(
        rows.order_by().values(rows=Func(Value(1), function="COUNT", output_field=IntegerField()))
    )


# Stands for the customer's id while the summary's SQL is compiled once a day (ids are positive).
_ANY_CUSTOMER = -7_301_000_000_001


def _summary_queryset(*, customer_id: int, today: date) -> QuerySet[Customer]:
    """The customer with her deletion facts, the latest expiry of her copies, and one row count
    per data-map table (`_rows_<n>`, in `data_map.tables()` order)."""
    counts = {
        f"_rows_{index}": _row_count(table.rows_for_customer(customer_id))
        for index, (_category, table) in enumerate(data_map_tables())
    }
    copies = AccessRequest.objects.filter(
        customer_id=OuterRef("pk"),
        status__in=(AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED),
        expires_at__isnull=False,
    )
    # Her open erasure request, if any: the page offers erasure or shows its state from these.
    erasure = ErasureRequest.objects.filter(
        former_customer_id=OuterRef("pk"), status__in=ErasureRequest.OPEN_STATUSES
    ).values("pk", "status")[:1]
    return customers_with_deletion_facts(
        queryset=Customer.objects.filter(pk=customer_id), today=today
    ).annotate(
        **counts,
        _copies_expire_at=Subquery(copies.order_by("-expires_at").values("expires_at")[:1]),
        _open_erasure_id=Subquery(erasure.values("pk")),
        _open_erasure_status=Subquery(erasure.values("status")),
    )


@functools.lru_cache(maxsize=4)
def _summary_statement(today: date) -> tuple[str, tuple[Any, ...]]:
    """The summary's SQL and parameters, compiled by the ORM once per day and process: building
    the query (relationship, holds and a subquery per table) cost more than running it."""
    sql, params = _summary_queryset(customer_id=_ANY_CUSTOMER, today=today).query.sql_with_params()
    # The id must travel as a parameter, never inlined, or another customer's page would be wrong.
    if str(_ANY_CUSTOMER) in sql or _ANY_CUSTOMER not in params:
        raise RuntimeError("the customer summary's SQL must take the customer's id as a parameter")
    return sql, tuple(params)


@dataclass(frozen=True)
class MyDataPage:
    """What /my-data/ shows, from the one summary statement."""

    summary: list[CategorySummary]
    relationship_status: str
    open_erasure: ErasureRequest | None


def my_data_page(customer: Customer, *, today: date | None = None) -> MyDataPage:
    summary, facts = _summary_and_facts(customer, today=today)
    open_erasure = None
    if facts["_open_erasure_id"] is not None:
        open_erasure = ErasureRequest(
            pk=facts["_open_erasure_id"], status=facts["_open_erasure_status"], former_customer_id=customer.pk
        )
    return MyDataPage(summary, str(facts["relationship_status"]), open_erasure)


def stored_data_summary(customer: Customer, *, today: date | None = None) -> list[CategorySummary]:
    return _summary_and_facts(customer, today=today)[0]


def _summary_and_facts(
    customer: Customer, *, today: date | None = None
) -> tuple[list[CategorySummary], dict[str, Any]]:
    """Every data-map category with the customer's row counts, purpose, legal basis, processors,
    the retention promise, and the date it will be deleted and why; and the facts loaded with it.

    One query, whatever the number of tables: each table's count is a scalar subquery on its
    customer index (the data map's `customer_path`), beside the deletion facts of
    `customers_with_deletion_facts` and the latest expiry of her copies."""
    today = today or timezone.localdate()
    sql, params = _summary_statement(today)
    loaded = next(
        iter(Customer.objects.raw(sql, [customer.pk if p == _ANY_CUSTOMER else p for p in params])),
        None,
    )
    if loaded is None:
        raise Customer.DoesNotExist
    mapped = categories()
    tables = [table for category in mapped for table in category.tables]
    facts = vars(loaded)
    schedule = {item.category_key: item for item in deletion_schedule_of(customer=loaded)}
    periods = RetentionPeriods.from_settings()
    found = iter(
        TableCount(
            model=table.model,
            name=str(table.description or capfirst(table.model_class._meta.verbose_name_plural)),
            count=facts[f"_rows_{index}"],
        )
        for index, table in enumerate(tables)
    )
    summaries = []
    for category in mapped:
        category_tables = [next(found) for _table in category.tables]
        holds_nothing = bool(category_tables) and not any(table.count for table in category_tables)
        deletable_on, reason = _deletion(
            category, schedule.get(category.key), facts["_copies_expire_at"], periods, holds_nothing
        )
        summaries.append(CategorySummary(category, category_tables, deletable_on, reason))
    return summaries, facts


def _deletion(
    category: Category,
    scheduled: ScheduledDeletion | None,
    copies_expire_at: datetime | None,
    periods: RetentionPeriods,
    holds_nothing: bool,
) -> tuple[date | None, str]:
    if scheduled is not None:
        return scheduled.deletable_on, scheduled.reason
    if category.key == "access_request_exports" and copies_expire_at is not None:
        # The file of a copy goes `export_days` after it was ready; the requests themselves go
        # with the rest of the customer's data.
        return timezone.localdate(copies_expire_at), _(
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


def erasure_request_get_for_customer(*, customer: Customer, request_id: Any) -> ErasureRequest:
    """The customer's own erasure request; anyone else's is a 404."""
    return get_object_or_404(ErasureRequest, pk=request_id, former_customer_id=customer.pk)


def erasure_request_get_by_token(*, token: str) -> ErasureRequest:
    """The erasure request whose receipt link this is (only the link's SHA-256 is kept); else 404."""
    if not 20 <= len(token) <= 100:
        raise Http404
    return get_object_or_404(ErasureRequest, receipt_token_hash=ErasureRequest.receipt_token_hash_of(token))
