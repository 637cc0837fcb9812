"""No 500 for staff: whatever a staff member (or a link pasted into their browser) puts in an admin
URL's query string, the admin answers 200, 302, 400 or 404, never a server error.

Derived from the admin registry, not a hand list: every ModelAdmin registered on the portal's site
gets junk in each of its list filters' parameters (as its own filter specs name them), its
date-hierarchy drill-down (years 0, 9999 and one that overflows), its search box, the autocomplete
of each of its autocomplete fields, and its add and change pages' initial values. A screen
registered later is tested without anyone remembering to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from portal.admin_parameters import ParameterCheckedAdminMixin
from tests.factories import ContactFactory, CorrespondenceFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

ANSWERS_FOR_JUNK = {200, 302, 400, 404}
# A NUL byte (PostgreSQL refuses it in text), a number that overflows every integer column, a
# negative one, the wrong type, and a date that does not exist.
JUNK = ("\x00", "abc\x00", "99999999999999999999", "-1", "abc", "2026-02-30", "1,\x00")
DRILL_DOWN_YEARS = ("0", "9999", "99999999999", "-1", "abc", "\x00")
SEARCH_JUNK = (
    "\x00",
    "kari\x00nordmann",
    "%\x00%",
    "99999999999999999999",
    "-99999999999999999999",
    "abc",
    "2026-02-30",
)
AUTOCOMPLETE_JUNK = (
    {"term": "\x00"},
    {"term": "a\x00b"},
    {"term": "99999999999999999999"},
    {"term": "x", "page": "99999999999999999999"},
)

REGISTERED: list[tuple[type[Model], ModelAdmin[Any]]] = sorted(
    admin.site._registry.items(), key=lambda item: item[0]._meta.label
)


def _label(model_admin: ModelAdmin[Any]) -> str:
    return str(model_admin.model._meta.label)


@pytest.fixture
def staff_client(superuser: Any, mfa_login: Callable[[Client, Any], Any]) -> Client:
    # A 500 answers as a 500 here (instead of raising in the test), so one run lists every one.
    client = Client(raise_request_exception=False)
    mfa_login(client, superuser)
    return client


@pytest.fixture
def some_records(db: None) -> None:
    """A row in the customer screens, so change pages and filters have something to show."""
    invoice = InvoiceFactory.create()
    ContactFactory.create(customer=invoice.customer)
    CorrespondenceFactory.create(customer=invoice.customer)


def _url(model_admin: ModelAdmin[Any], view: str, *args: Any) -> str:
    opts = model_admin.model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _with(url: str, parameters: dict[str, str]) -> str:
    return f"{url}?{urlencode(parameters)}"


def _changelist_urls(client: Client, model_admin: ModelAdmin[Any]) -> Iterator[str]:
    changelist = _url(model_admin, "changelist")
    response = client.get(changelist)
    assert response.status_code == 200, f"{changelist} answers {response.status_code} without junk"
    # A screen that replaces the changelist (the Processors page) has no filters of Django's.
    specs = response.context["cl"].filter_specs if "cl" in response.context else []
    filter_parameters = sorted({name for spec in specs for name in spec.expected_parameters()})
    for name in filter_parameters:
        for junk in JUNK:
            yield _with(changelist, {name: junk})
            yield _with(changelist, {name: junk, "_facets": "1"})
    if model_admin.date_hierarchy:
        drill_down = f"{model_admin.date_hierarchy}__"
        for year in DRILL_DOWN_YEARS:
            yield _with(changelist, {f"{drill_down}year": year})
        yield _with(changelist, {f"{drill_down}year": "2026", f"{drill_down}month": "13"})
        yield _with(changelist, {f"{drill_down}year": "2026", f"{drill_down}month": "99999999999"})
        yield _with(changelist, {f"{drill_down}year": "9999", f"{drill_down}month": "12"})
        yield _with(
            changelist, {f"{drill_down}year": "9999", f"{drill_down}month": "12", f"{drill_down}day": "31"}
        )
        yield _with(
            changelist, {f"{drill_down}year": "2026", f"{drill_down}month": "2", f"{drill_down}day": "30"}
        )
    if model_admin.search_fields:
        for junk in SEARCH_JUNK:
            yield _with(changelist, {"q": junk})
    for name, junk in (("p", "99999999999999999999"), ("o", "abc"), ("o", "\x00"), ("\x00", "1")):
        yield _with(changelist, {name: junk})


def _autocomplete_urls(model_admin: ModelAdmin[Any]) -> Iterator[str]:
    opts = model_admin.model._meta
    for field_name in model_admin.autocomplete_fields:
        source = {"app_label": opts.app_label, "model_name": opts.model_name, "field_name": field_name}
        for junk in AUTOCOMPLETE_JUNK:
            yield _with(reverse("admin:autocomplete"), {**source, **junk})


def _form_field_names(model_admin: ModelAdmin[Any], superuser: Any, obj: Model | None) -> list[str]:
    request = RequestFactory().get("/")
    request.user = superuser
    return list(model_admin.get_form(request, obj).base_fields)


def _add_and_change_urls(model_admin: ModelAdmin[Any], superuser: Any) -> Iterator[str]:
    request = RequestFactory().get("/")
    request.user = superuser
    if model_admin.has_add_permission(request):
        add = _url(model_admin, "add")
        for name in _form_field_names(model_admin, superuser, None):
            for junk in JUNK:
                yield _with(add, {name: junk})
    for object_id in ("abc", "99999999999999999999", "-1", "\x00"):
        yield _url(model_admin, "change", object_id)
    obj = model_admin.get_queryset(request).first()
    if obj is not None and model_admin.has_view_or_change_permission(request, obj):
        change = _url(model_admin, "change", obj.pk)
        for name in _form_field_names(model_admin, superuser, obj):
            for junk in JUNK[:3]:
                yield _with(change, {name: junk, "_changelist_filters": junk})


@pytest.mark.parametrize("model_admin", [model_admin for _model, model_admin in REGISTERED], ids=_label)
def test_junk_in_an_admin_url_is_never_a_server_error(
    staff_client: Client, superuser: Any, some_records: None, model_admin: ModelAdmin[Any]
) -> None:
    urls = [
        *_changelist_urls(staff_client, model_admin),
        *_autocomplete_urls(model_admin),
        *_add_and_change_urls(model_admin, superuser),
    ]
    answers = {url: staff_client.get(url).status_code for url in urls}
    wrong = {url: status for url, status in answers.items() if status not in ANSWERS_FOR_JUNK}
    assert not wrong, "\n".join(f"{status} {url}" for url, status in wrong.items())


@pytest.mark.parametrize("model_admin", [model_admin for _model, model_admin in REGISTERED], ids=_label)
def test_junk_rows_selected_for_an_action_are_never_a_server_error(
    staff_client: Client, superuser: Any, some_records: None, model_admin: ModelAdmin[Any]
) -> None:
    request = RequestFactory().get("/")
    request.user = superuser
    changelist = _url(model_admin, "changelist")
    answers = {}
    for action in model_admin.get_actions(request):
        for junk in ("\x00", "abc", "99999999999999999999", "-1", "1\x00"):
            response = staff_client.post(changelist, {"action": action, "_selected_action": junk})
            answers[(action, junk)] = response.status_code
    response = staff_client.post(changelist, {"action": "\x00", "_selected_action": "1"})
    answers[("\x00", "1")] = response.status_code
    wrong = {key: status for key, status in answers.items() if status not in ANSWERS_FOR_JUNK}
    assert not wrong, "\n".join(
        f"{status} {action!r} on {junk!r}" for (action, junk), status in wrong.items()
    )


def test_the_registry_is_the_whole_admin() -> None:
    # The parametrisation above covers the screens the customer data lives on (and any added later).
    labels = {_label(model_admin) for _model, model_admin in REGISTERED}
    assert {"customers.Customer", "retention.LegalHold", "access_requests.AccessRequest"} <= labels
    # ... and every one of them has its parameters checked, whichever app registered it.
    unchecked = [_label(ma) for _m, ma in REGISTERED if not isinstance(ma, ParameterCheckedAdminMixin)]
    assert unchecked == []


# --- The attacks of the report, and what still works ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/retention/legalhold/add/?customer=abc",
        "/admin/retention/legalhold/?placed_at__year=9999",
        "/admin/retention/legalhold/?placed_at__year=99999999999",
        "/admin/retention/legalhold/?placed_at__year=0",
        "/admin/audit/auditevent/?kind__exact=%00",
        "/admin/customers/customer/?q=kari%00",
        "/admin/autocomplete/?app_label=retention&model_name=legalhold&field_name=customer&term=%00",
    ],
)
def test_junk_parameters_are_a_bad_request(staff_client: Client, url: str) -> None:
    assert staff_client.get(url).status_code == 400


def test_a_real_drill_down_and_a_real_initial_customer_still_work(staff_client: Client, alice: Any) -> None:
    assert (
        staff_client.get("/admin/retention/legalhold/?placed_at__year=2026&placed_at__month=2").status_code
        == 200
    )
    assert (
        staff_client.get("/admin/retention/legalhold/?placed_at__year=9998&placed_at__month=12").status_code
        == 200
    )
    add = staff_client.get(f"/admin/retention/legalhold/add/?customer={alice.pk}")
    assert add.status_code == 200
    assert add.context["adminform"].form.initial["customer"] == str(alice.pk)


def test_a_visitor_is_sent_to_sign_in_before_the_parameters_are_looked_at(client: Client) -> None:
    response = client.get("/admin/audit/auditevent/?kind__exact=%00")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
