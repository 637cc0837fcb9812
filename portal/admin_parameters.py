"""Junk in an admin URL's query string (or in the rows posted for an action) is a 400 (Bad
Request), never a server error.

The admin reads its query string in many places (list filters, the date drill-down, the search box,
the autocomplete, an add page's initial values), and some of them hand a value on to code that
raises on it: PostgreSQL refuses a NUL byte in text, `datetime` overflows past year 9999, a form
widget of a date or a related row cannot show a value of the wrong type. Rather than catch those
errors wherever they surface (which would hide a real bug raising the same ValueError), the
parameters are checked before the admin uses them.

Invariants:
- Wired in `PortalAdminSite` for every view and every ModelAdmin registered on it
  (portal/admin_site.py), so no app's admin has to remember it.
- No admin view sees a query string or a submitted form holding a NUL byte:
  `refuse_unstorable_text`, run by `PortalAdminSite.admin_view` around each of them (the
  autocomplete too), answers 400 first.
- A changelist's date drill-down (`<date_hierarchy>__year`, `__month`, `__day`) reaches Django only
  as a real date whose following day, month and year exist; anything else answers 400.
- An add page's initial values from the query string are cleaned by the very form fields that will
  show them; a value its field refuses answers 400.
- The rows selected for an action reach it only as values of the model's primary key.
- Only what comes from the request is refused: a value that passes these checks and still raises is a
  bug, and stays a 500 that says so.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any, cast

from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import BadRequest, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict

UNSTORABLE = "\x00"
DRILL_DOWN_PARTS = ("year", "month", "day")
# The drill-down shows [day, next day), [month, next month) or [year, next year): the next one must
# still be a date Python can represent.
LAST_DRILL_DOWN_YEAR = datetime.MAXYEAR - 1


def refuse_unstorable_text(query: QueryDict) -> None:
    """A NUL byte in any name or value: PostgreSQL cannot store or compare it, and no form sends it."""
    for name, values in query.lists():
        if UNSTORABLE in name or any(UNSTORABLE in value for value in values):
            raise BadRequest("A query parameter holds a NUL byte.")


def refusing_unstorable_text[View: Callable[..., HttpResponseBase]](view: View) -> View:
    @functools.wraps(view)  # keeps what the site reads off the view (csrf_exempt)
    def checked_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refuse_unstorable_text(request.GET)
        if request.method == "POST":
            refuse_unstorable_text(request.POST)
        return view(request, *args, **kwargs)

    return cast(View, checked_view)


def _small_whole_number(value: str, *, digits: int) -> int:
    # ASCII digits only (str.isdigit also takes other scripts' digits, which int() reads).
    if not value.isascii() or not value.isdigit() or len(value) > digits:
        raise BadRequest("A date drill-down parameter is not a date.")
    return int(value)


def check_drill_down(query: QueryDict, date_hierarchy: str) -> None:
    """Refuse a drill-down Django would turn into an impossible date range (it reads the last value
    of each part, and the month and day only with a year)."""
    year, month, day = (query.getlist(f"{date_hierarchy}__{part}") for part in DRILL_DOWN_PARTS)
    if not year:
        return
    try:
        first = datetime.date(
            _small_whole_number(year[-1], digits=4),
            _small_whole_number(month[-1], digits=2) if month else 1,
            _small_whole_number(day[-1], digits=2) if day else 1,
        )
    except ValueError as invalid:
        raise BadRequest("A date drill-down parameter is not a date.") from invalid
    if not 1 <= first.year <= LAST_DRILL_DOWN_YEAR:
        raise BadRequest("A date drill-down year is out of range.")


class ParameterCheckedAdminMixin(ModelAdmin):
    """Put in front of every registered ModelAdmin by `PortalAdminSite.register`."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if self.date_hierarchy:
            check_drill_down(request.GET, self.date_hierarchy)
        return super().changelist_view(request, extra_context)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        fields = self.get_form(request, None).base_fields
        for name, value in initial.items():
            field = fields.get(name)
            if field is None or value in field.empty_values:
                continue
            try:
                field.clean(value)
            except ValidationError as refused:
                raise BadRequest(f"The initial value of {name} is not one its field accepts.") from refused
        return initial

    def response_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        action_location: ActionLocation = ActionLocation.CHANGE_LIST,
    ) -> HttpResponse | None:
        primary_key = self.model._meta.pk
        assert primary_key is not None
        for selected in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                value = primary_key.to_python(selected)
                # An id past the column's range cannot be a row's (PostgreSQL would refuse the query).
                primary_key.run_validators(value)
            except ValidationError as refused:
                raise BadRequest("A row selected for the action is not one of this list's.") from refused
        return super().response_action(request, queryset, action_location)


def parameters_checked(admin_class: type[ModelAdmin[Any]]) -> type[ModelAdmin[Any]]:
    """`admin_class` with ParameterCheckedAdminMixin in front of it (itself when it has it already)."""
    if issubclass(admin_class, ParameterCheckedAdminMixin):
        return admin_class
    # The admin's own metaclass (forms.MediaDefiningClass) makes the subclass, as a class statement
    # would.
    metaclass: Any = type(admin_class)
    checked_class: type[ModelAdmin[Any]] = metaclass(
        f"ParameterChecked{admin_class.__name__}",
        (ParameterCheckedAdminMixin, admin_class),
        {"__module__": admin_class.__module__},
    )
    return checked_class
