"""The record of a customer's deletion at one processor: `ProcessorJob` rows, one per step.

A connector adds a step before it asks the processor, marks it submitted with the processor's job
id, and completed when the processor confirms; a failure leaves it pending with its error, and the
next purge run starts from the steps still outstanding. A completed deletion writes its
`DeletionLog` line (the processor's ids, never names or addresses) at the moment it is confirmed.

The rows are written in autocommit on a connection of their own (see
`processors.services.erase_at_processors`): what the processor has done is on record
whatever becomes of the purge batch's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from processors.models import ProcessorJob
from retention.data_map import category as data_category
from retention.models import DeletionLog, PurgeRun


class JobLedger:
    def __init__(self, *, processor: str, customer_id: int, run: PurgeRun | None) -> None:
        self.processor = processor
        self.customer_id = customer_id
        self.run = run

    def outstanding(self, kind: str) -> list[ProcessorJob]:
        """The steps of `kind` not yet confirmed by the processor, oldest first (index
        processorjob_customer_idx)."""
        return list(
            ProcessorJob.objects.filter(processor=self.processor, customer_id=self.customer_id, kind=kind)
            .exclude(status=ProcessorJob.Status.COMPLETED)
            .order_by("pk")
        )

    def add(self, kind: str, *, target_ids: Sequence[int] = (), external_id: str = "") -> ProcessorJob:
        """A new step; `external_id` names where at the processor it applies when the processor has
        no job id of its own for it (the Gmail mailbox a batch deletion is made in)."""
        return ProcessorJob.objects.create(
            processor=self.processor,
            kind=kind,
            customer_id=self.customer_id,
            target_ids=list(target_ids),
            external_id=external_id,
            run=self.run,
        )

    def _save(self, job: ProcessorJob, *fields: str) -> None:
        job.run = self.run
        job.updated_at = timezone.now()
        job.save(update_fields=[*fields, "run", "updated_at"])

    def submitted(self, job: ProcessorJob, *, external_id: str) -> None:
        job.status = ProcessorJob.Status.SUBMITTED
        job.external_id = external_id[:100]
        job.attempts += 1
        self._save(job, "status", "external_id", "attempts")

    def attempted(self, job: ProcessorJob) -> None:
        """A step that the processor answers at once (no job to poll) is being tried."""
        job.attempts += 1
        self._save(job, "attempts")

    def failed(self, job: ProcessorJob, *, error: str, keep_submitted: bool = False) -> None:
        """The step did not get done; the next run retries it (or, `keep_submitted`, polls the
        processor's job again)."""
        if not keep_submitted:
            job.status = ProcessorJob.Status.PENDING
        job.last_error = error
        self._save(job, "status", "last_error")

    def completed(
        self, job: ProcessorJob, *, log_model: str | None = None, category: str | None = None
    ) -> None:
        """The processor confirmed the step; `log_model` writes the proof of deletion for its ids."""
        job.status = ProcessorJob.Status.COMPLETED
        job.finished_at = timezone.now()
        job.last_error = ""
        self._save(job, "status", "finished_at", "last_error")
        if log_model is not None and category is not None:
            self.log(model=log_model, category=category, ids=job.target_ids)

    def log(self, *, model: str, category: str, ids: Sequence[int]) -> None:
        if self.run is None or not ids:
            return
        DeletionLog.for_rows(
            run=self.run,
            category=category,
            rule=data_category(category).rule,
            model=model,
            customer_id=self.customer_id,
            ids=ids,
        ).save()

    def erasure_complete(self) -> ProcessorJob:
        """Every step at this processor is done: the marker the customer-account purge waits for."""
        now = timezone.now()
        return ProcessorJob.objects.create(
            processor=self.processor,
            kind=ProcessorJob.ERASURE,
            customer_id=self.customer_id,
            status=ProcessorJob.Status.COMPLETED,
            run=self.run,
            finished_at=now,
            created_at=now,
            updated_at=now,
        )
