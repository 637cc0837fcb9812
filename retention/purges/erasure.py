"""Erasure outside the portal: steps that delete a customer's data elsewhere (at the processors)
before the correspondence purge deletes her rows here, while her e-mail addresses are still here.

`retention` knows no processor. An app that holds customers' data elsewhere registers a factory
with `register_erasure_step` (the processors app does, in its AppConfig.ready); each purge asks
the factories once, when it is made, and iterates the steps that are on.

Invariants every step keeps (see processors/purging.py for the processors' step):
- Its factory answers None, from settings alone (no query, no request), when it has nothing to do,
  so a purge with no step on is as fast as without this module (benchmarks/purge.py).
- `erase_batch` answers the customers of the batch whose rows in the portal may go now; the others
  keep their correspondence, and `erased()` keeps the customer-account purge waiting for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from django.db.models import Q

    from customers.models import CustomerQuerySet
    from retention.models import PurgeRun
    from retention.purges.base import BatchResult, PreviewLine, Purge


class ErasureStep(Protocol):
    def erased(self) -> Q:
        """Customers this step has finished erasing."""

    def erase_batch(
        self, *, purge: Purge, customer_ids: list[int], run: PurgeRun, result: BatchResult
    ) -> list[int]:
        """Erase these (locked) customers elsewhere; answer those whose rows may go now, and add
        what went and what failed to `result`."""

    def preview_lines(self, *, customers: CustomerQuerySet, reason: str) -> list[PreviewLine]:
        """What is still to erase for these due customers (nobody outside is asked)."""


ErasureStepFactory = Callable[[], "ErasureStep | None"]

ERASURE_STEP_FACTORIES: list[ErasureStepFactory] = []


def register_erasure_step(factory: ErasureStepFactory) -> None:
    if factory not in ERASURE_STEP_FACTORIES:
        ERASURE_STEP_FACTORIES.append(factory)


def erasure_steps() -> list[ErasureStep]:
    """The steps that are on now, from settings alone."""
    return [step for factory in ERASURE_STEP_FACTORIES if (step := factory()) is not None]
