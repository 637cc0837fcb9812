"""The GDPR clock for access requests (art. 12(3)): pure date functions.

A request is answered within one calendar month of receipt: the same day next month, or the last
day of that month when it has no such day (31 January → 28/29 February). The deadline may be
extended once, by two further months, when the controller tells the requester why within the first
month: three calendar months from receipt (31 January → 30 April).
"""

from __future__ import annotations

from datetime import date

from retention.windows import add_months

EXTENSION_MONTHS = 2


def gdpr_due_date(received_on: date) -> date:
    return add_months(received_on, 1)


def gdpr_extended_due_date(received_on: date) -> date:
    return add_months(received_on, 1 + EXTENSION_MONTHS)


def can_extend(*, received_on: date, already_extended: bool, today: date) -> bool:
    """Once only, and only while the first month is still running."""
    return not already_extended and today <= gdpr_due_date(received_on)
