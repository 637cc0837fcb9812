"""Writes for the processors: the daily check of their settings, the purge's deletion step at each
processor, and the analytics ids customers give us.

Invariants of `erase_at_processors`:
- It runs on a database connection of its own, in autocommit: a `ProcessorJob` step and its
  `DeletionLog` line are committed the moment the processor confirms them, so a purge batch that
  rolls back, or a worker killed mid-batch, never loses the record of what the processor already
  did (a ticket deleted at Zendesk is no longer found by searching for it).
- A customer is `complete` only when every erasing connector says so; the purge keeps the
  customer's rows (and so their e-mail addresses) until then, and the next run retries.
- A processor found unavailable is not asked again in the same batch: the batch's other customers
  wait for the next run instead of each waiting out the same outage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils.translation import gettext_lazy as _

from processors.base import Connector, ErasureSubject, ProcessorDeletion, ProcessorError
from processors.ledger import JobLedger
from processors.models import ProcessorCheck, VaultConfirmation
from retention.models import AnalyticsIdentifier, PurgeRun

if TYPE_CHECKING:
    from customers.models import Customer

logger = logging.getLogger(__name__)

# A customer may give us this many analytics ids (one per browser they use, say).
MAX_ANALYTICS_IDENTIFIERS = 10
# The client id in a _ga cookie: "GA1.1.1234567890.1712345678" holds "1234567890.1712345678".
# ASCII digits only ([0-9], not \d, which takes every script's digits) and nothing after the id
# (\Z, not $, which lets a trailing newline through): the id goes to Google as it is.
CLIENT_ID = re.compile(r"^(?:GA[0-9]+\.[0-9]+\.)?([0-9]{1,20}\.[0-9]{1,20})\Z")


# --- The daily check ---------------------------------------------------------------------------


def check_processors(*, connectors: Sequence[Connector] | None = None) -> list[ProcessorCheck]:
    """Compare each configured processor's settings with the data map; one ProcessorCheck each."""
    from processors import registry

    checks = []
    for connector in registry.connectors() if connectors is None else connectors:
        try:
            drift = connector.check_settings()
        except ProcessorError as error:
            check = ProcessorCheck.objects.create(processor=connector.key, ok=False, error=str(error))
        except Exception as error:  # one connector's bug must not stop the others' checks
            logger.exception("processor check %s failed unexpectedly", connector.key)
            check = ProcessorCheck.objects.create(
                processor=connector.key, ok=False, error=f"{connector.key}: unexpected {type(error).__name__}"
            )
        else:
            check = ProcessorCheck.objects.create(
                processor=connector.key, ok=not drift, drift=[item.as_json() for item in drift]
            )
        if not check.ok:
            logger.warning(
                "processor %s does not match the policy: %s",
                connector.key,
                check.error or "; ".join(item["setting"] for item in check.drift),
            )
        checks.append(check)
    return checks


def vault_confirm(*, confirmed_on: date, confirmed_by: Any) -> VaultConfirmation:
    """Record staff's word that no Google Vault rule or hold keeps customer mail; the row is its own
    record of who said so and when (the Processors page shows the latest)."""
    return VaultConfirmation.objects.create(
        confirmed_on=confirmed_on,
        confirmed_by_id=confirmed_by.pk,
        confirmed_by_name=confirmed_by.get_username(),
    )


# --- The purge's step at the processors --------------------------------------------------------


@dataclass
class ErasureOutcome:
    customer_id: int
    deletions: list[ProcessorDeletion] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # connectors not asked: unavailable this batch

    @property
    def complete(self) -> bool:
        return not self.skipped and all(deletion.complete for deletion in self.deletions)

    @property
    def errors(self) -> list[str]:
        return [error for deletion in self.deletions for error in deletion.errors]


def in_own_connection[T](work: Callable[[], T]) -> T:
    """Run `work` in a worker thread and wait for it. Django gives the thread a database connection
    of its own, in autocommit, so what `work` writes is committed at once, whatever becomes of the
    caller's transaction (a second connection by the only means Django offers for one)."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="processor-erasure") as pool:
        return pool.submit(run).result()


def erase_at_processors(
    *, subjects: Sequence[ErasureSubject], run: PurgeRun | None, connectors: Sequence[Connector]
) -> dict[int, ErasureOutcome]:
    """Delete these customers' data at each connector's processor; see the invariants above."""
    if transaction.get_connection().in_atomic_block:
        return in_own_connection(lambda: _erase(subjects, run, connectors))
    return _erase(subjects, run, connectors)


def _erase(
    subjects: Sequence[ErasureSubject], run: PurgeRun | None, connectors: Sequence[Connector]
) -> dict[int, ErasureOutcome]:
    outcomes: dict[int, ErasureOutcome] = {}
    unavailable: dict[str, str] = {}
    for subject in subjects:
        outcome = outcomes[subject.customer_id] = ErasureOutcome(subject.customer_id)
        for connector in connectors:
            if connector.key in unavailable:
                outcome.skipped.append(connector.key)
                continue
            ledger = JobLedger(processor=connector.key, customer_id=subject.customer_id, run=run)
            try:
                deletion = connector.delete_customer(subject, ledger=ledger)
            except Exception as error:  # a connector's bug: the customer waits, the others go on
                logger.exception(
                    "processor %s: deleting customer %s failed", connector.key, subject.customer_id
                )
                deletion = ProcessorDeletion(
                    connector.key,
                    subject.customer_id,
                    errors=[
                        f"customer {subject.customer_id}: {connector.key}: unexpected {type(error).__name__}"
                    ],
                )
            outcome.deletions.append(deletion)
            if deletion.unavailable:
                unavailable[connector.key] = deletion.errors[-1] if deletion.errors else connector.key
    for key, reason in unavailable.items():
        waiting = sum(1 for outcome in outcomes.values() if key in outcome.skipped)
        if waiting:
            first = next(outcome for outcome in outcomes.values() if key in outcome.skipped)
            first.deletions.append(
                ProcessorDeletion(
                    key,
                    first.customer_id,
                    errors=[
                        f"{key}: unavailable ({reason}); {waiting} more customers of this batch wait "
                        "for the next run"
                    ],
                )
            )
    return outcomes


# --- Analytics ids given by the customer -------------------------------------------------------


def normalize_client_id(value: str) -> str:
    """The client id from what the customer pasted: the id itself, or the whole _ga cookie."""
    match = CLIENT_ID.match(value.strip())
    if match is None:
        raise ValidationError(
            _(
                "That is not a Google Analytics id: it looks like 1234567890.1712345678 "
                "(or GA1.1.1234567890.1712345678)."
            ),
            code="invalid",
        )
    return match.group(1)


@transaction.atomic
def analytics_identifier_add(*, customer: Customer, client_id: str) -> AnalyticsIdentifier:
    client_id = normalize_client_id(client_id)
    existing = AnalyticsIdentifier.objects.filter(customer=customer, client_id=client_id).first()
    if existing is not None:
        return existing
    if AnalyticsIdentifier.objects.filter(customer=customer).count() >= MAX_ANALYTICS_IDENTIFIERS:
        raise ValidationError(
            _("You can give us at most %(count)s analytics ids.") % {"count": MAX_ANALYTICS_IDENTIFIERS},
            code="too_many",
        )
    return AnalyticsIdentifier.objects.create(customer=customer, client_id=client_id)


def analytics_identifier_remove(*, customer: Customer, identifier_id: int) -> bool:
    """Forget one of the customer's analytics ids; False when it is not theirs or already gone."""
    deleted, _rows = AnalyticsIdentifier.objects.filter(customer=customer, pk=identifier_id).delete()
    return bool(deleted)
