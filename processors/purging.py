"""The purge's step at the processors: the erasure step (`retention.purges.erasure`) the
processors app registers, which the correspondence and customer-account purges take.

Invariants (see also `processors.services.erase_at_processors`):
- With no erasing connector configured nothing here runs: no query, no thread, no request, so the
  purge is as fast as it was (benchmarks/purge.py).
- A customer's rows in the portal go only after every configured processor has confirmed her
  erasure: `erase_batch` answers the customers whose rows may go now; the others keep their
  correspondence, and the customer-account purge waits for the erasure markers (`erased`).
- A customer's analytics ids go once Google has her deletion request, each with its DeletionLog
  line, in the purge batch's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db.models import Q

from processors import registry
from processors.base import Connector
from processors.selectors import erased_at, erasure_subjects
from processors.services import erase_at_processors
from retention.models import AnalyticsIdentifier
from retention.purges.base import PreviewLine

if TYPE_CHECKING:
    from customers.models import CustomerQuerySet
    from retention.models import PurgeRun
    from retention.purges.base import BatchResult, Purge

GOOGLE_ANALYTICS = "google_analytics"


def processor_erasure() -> ProcessorErasure | None:
    """The step, with the configured connectors the purge deletes customers' data through; None
    when there is none (settings only)."""
    connectors = registry.erasing_connectors()
    return ProcessorErasure(connectors) if connectors else None


class ProcessorErasure:
    def __init__(self, connectors: Sequence[Connector]) -> None:
        self.connectors = list(connectors)

    def erased(self, connectors: Sequence[Connector] | None = None) -> Q:
        """Customers every one of these processors (by default all of the step's) has finished
        erasing."""
        return erased_at(
            connector.key for connector in (self.connectors if connectors is None else connectors)
        )

    def erase_batch(
        self, *, purge: Purge, customer_ids: list[int], run: PurgeRun, result: BatchResult
    ) -> list[int]:
        """Delete these (locked) customers' data at the processors; answers the customers whose
        rows in the portal may go now, and adds what went and what failed to `result`."""
        subjects = erasure_subjects(customer_ids)
        outcomes = erase_at_processors(subjects=list(subjects.values()), run=run, connectors=self.connectors)
        done = []
        for customer_id in customer_ids:
            outcome = outcomes[customer_id]
            result.errors.extend(outcome.errors)
            for deletion in outcome.deletions:
                for model, ids in deletion.deleted.items():
                    result.add(model, len(ids))
            if outcome.complete:
                done.append(customer_id)
        if done and any(connector.key == GOOGLE_ANALYTICS for connector in self.connectors):
            identifiers = AnalyticsIdentifier.objects.filter(customer_id__in=done)
            result.add(
                "retention.AnalyticsIdentifier",
                purge.log_grouped(
                    run=run, queryset=identifiers, customer_field="customer_id", category="web_analytics"
                ),
            )
            identifiers.delete()
        return done

    def preview_lines(self, *, customers: CustomerQuerySet, reason: str) -> list[PreviewLine]:
        """How many due customers each processor has still to erase (no processor is asked)."""
        return [
            PreviewLine(
                f"{connector.key} (customers)", customers.exclude(self.erased([connector])).count(), reason
            )
            for connector in self.connectors
        ]
