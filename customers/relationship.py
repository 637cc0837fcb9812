"""The customer relationship, derived from contracts.

The relationship is active while any contract has not ended (no end date, or an end date today or
later: `ended_on` is the last day of service). It ends on the latest end date once every contract
has ended. A new contract revives it. A customer with no contract has no relationship to end.
`Customer.objects.with_relationship()` computes the same in SQL; a test keeps the two in step.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class RelationshipStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"
    NO_CONTRACT = "no_contract"


@dataclass(frozen=True)
class Relationship:
    status: RelationshipStatus
    ended_on: date | None = None


def relationship_on(contract_end_dates: Iterable[date | None], *, today: date) -> Relationship:
    """The relationship on `today`, given each contract's `ended_on` (None: open-ended)."""
    latest_end: date | None = None
    any_contract = False
    for ended_on in contract_end_dates:
        any_contract = True
        if ended_on is None or ended_on >= today:
            return Relationship(RelationshipStatus.ACTIVE)
        latest_end = ended_on if latest_end is None else max(latest_end, ended_on)
    if not any_contract:
        return Relationship(RelationshipStatus.NO_CONTRACT)
    return Relationship(RelationshipStatus.ENDED, ended_on=latest_end)
