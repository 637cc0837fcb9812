"""The hourly expiry of exports: a file goes `export_days` (7) after it was ready.

Invariants (besides those in retention/purges/base.py that files can keep):
- A request `ready` or `downloaded` whose `expires_at` has passed has its file deleted and becomes
  `expired`, with a DeletionLog line (model "access_requests.export", the customer's id, no ids:
  request ids are UUIDs, and the log keeps bigint ids).
- A file cannot join the database transaction. It is deleted first and the row changes after, in
  the batch's transaction: a worker killed between the two leaves a row still `ready` whose file is
  gone, which the next run expires (deleting a missing file is not an error); never an `expired`
  row whose file is still there.
- A file that cannot be deleted now is reported on the PurgeRun, its row stays as it is, and the
  next run tries again; it is skipped for the rest of this run, so the run ends.
- The sweep: a file under `exports/` that no request leads to is deleted once it is older than the
  export period (plus a margin). It catches a build killed after saving its file, and a copy whose
  customer was deleted while it was ready. It never deletes a younger file, nor one a request
  still names, so it cannot touch an export that is still promised to the customer.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from access_requests.models import AccessRequest, ErasureRequest
from access_requests.storage import EXPORT_DIRECTORY, delete_export, export_storage
from retention.models import PurgeRun
from retention.purges.base import BatchResult, PreviewLine, Purge, Tonight, active_hold
from retention.services import register_purge
from retention.windows import add_months

logger = logging.getLogger(__name__)

EXPORT_LABEL = "access_requests.export"
# A file is swept only when it is this much older than the export period: the clock of the
# storage and ours may differ a little, and a row is marked ready a moment after its file is saved.
SWEEP_MARGIN = timedelta(hours=1)


@register_purge
class ExportExpiryPurge(Purge):
    category = "access_request_exports"
    batch_size = 100
    # In an erasure on request, her copies go after her correspondence and before her account
    # (whose deletion takes the request rows, and so the names of the files, with it).
    erasure_step = 20

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failed_ids: set[Any] = set()
        self.swept = False

    def moment(self, *, today: date) -> datetime:
        """Exports that expire by this moment are due: now, or for a dry run of a later day, the
        end of that day."""
        end_of_day = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min))
        return min(timezone.now(), end_of_day) if today <= timezone.localdate() else end_of_day

    def due(self, *, today: date) -> QuerySet[AccessRequest]:
        if self.erasure_of is not None:  # an erasure on request: every copy of hers, now
            return (
                AccessRequest.objects.filter(customer_id=self.erasure_of)
                .exclude(export_name="")
                .exclude(active_hold(customer_field="customer_id", today=today))
            )
        # access_request_expiry_idx (status, expires_at)
        # A customer under a legal hold keeps her copies too, as every other row about her.
        return AccessRequest.objects.filter(
            status__in=[AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED],
            expires_at__lte=self.moment(today=today),
        ).exclude(active_hold(customer_field="customer_id", today=today))

    def sweep_before(self, *, today: date) -> datetime:
        return self.moment(today=today) - timedelta(days=self.periods.export_days) - SWEEP_MARGIN

    def stale_files(self, *, today: date) -> list[str]:
        storage = export_storage()
        try:
            _directories, files = storage.listdir(EXPORT_DIRECTORY)
        except FileNotFoundError:  # local storage before the first export
            return []
        before = self.sweep_before(today=today)
        # A file a request still leads to is the expiry's to delete, when its row says so.
        referenced = set(AccessRequest.objects.exclude(export_name="").values_list("export_name", flat=True))
        names = [f"{EXPORT_DIRECTORY}/{name}" for name in files]
        return sorted(
            name for name in names if name not in referenced and storage.get_modified_time(name) < before
        )

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        reason = _("ready more than %(days)s days ago") % {"days": self.periods.export_days}
        lines = [PreviewLine(EXPORT_LABEL, self.due(today=today).count(), reason)]
        stale = self.stale_files(today=today)
        if stale:
            lines.append(PreviewLine(f"{EXPORT_LABEL} (no request)", len(stale), reason))
        return lines

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        due = list(
            self.due(today=today)
            .exclude(pk__in=self.failed_ids)
            .select_for_update(skip_locked=True)
            .order_by("expires_at")
            .only("pk", "customer_id", "export_name")[: self.batch_size]
        )
        if due:
            return self.expire(due, run=run)
        if not self.swept and self.erasure_of is None:
            self.swept = True
            return self.sweep(today=today, run=run)
        return None

    def expire(self, due: list[AccessRequest], *, run: PurgeRun) -> BatchResult:
        result = BatchResult()
        expired = []
        for access_request in due:
            try:
                delete_export(access_request.export_name)
            except Exception as error:  # the storage is down or refuses: report, keep, try next run
                logger.exception("export of %s could not be deleted", access_request.pk)
                self.failed_ids.add(access_request.pk)
                result.errors.append(f"{EXPORT_LABEL} {access_request.pk}: {type(error).__name__}")
                continue
            expired.append(access_request)
        if expired:
            AccessRequest.objects.filter(pk__in=[row.pk for row in expired]).update(
                status=AccessRequest.Status.EXPIRED, export_name=""
            )
            for access_request in expired:
                self.log_entry(
                    run=run, model=EXPORT_LABEL, customer_id=access_request.customer_id, ids=[], count=1
                ).save()
            result.add(EXPORT_LABEL, len(expired))
        return result

    def sweep(self, *, today: date, run: PurgeRun) -> BatchResult:
        result = BatchResult()
        deleted = 0
        for name in self.stale_files(today=today):
            try:
                delete_export(name)
            except Exception as error:
                logger.exception("stale export %s could not be deleted", name)
                # The request id only: the rest of the name is what makes the file unguessable.
                reference = name.removeprefix(f"{EXPORT_DIRECTORY}/")[:36]
                result.errors.append(f"{EXPORT_LABEL} {reference}…: {type(error).__name__}")
                continue
            deleted += 1
        if deleted:
            self.log_entry(run=run, model=EXPORT_LABEL, customer_id=None, ids=[], count=deleted).save()
            result.add(EXPORT_LABEL, deleted)
        return result


@register_purge
class ErasureRecordPurge(Purge):
    """Erasure requests `accounting_years` after they were answered (done or rejected): by then
    no accounting record from before an erasure is left, nor any backup a restore could bring
    back. A request of a customer under a legal hold stays, as every row about her."""

    category = "erasure_requests"
    batch_size = 500

    def cutoff(self, *, today: date) -> date | None:
        return add_months(today, -12 * self.periods.accounting_years)

    def due(self, *, today: date) -> QuerySet[ErasureRequest]:
        cutoff = timezone.make_aware(datetime.combine(self.cutoff(today=today) or today, time.min))
        return ErasureRequest.objects.filter(
            status__in=[ErasureRequest.Status.DONE, ErasureRequest.Status.REJECTED], finished_at__lt=cutoff
        ).exclude(active_hold(customer_field="former_customer_id", today=today))

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        reason = _("answered more than %(years)s years ago") % {"years": self.periods.accounting_years}
        return [PreviewLine("access_requests.ErasureRequest", self.due(today=today).count(), reason)]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        due = list(
            self.due(today=today)
            .select_for_update(skip_locked=True)
            .order_by("finished_at")
            .values_list("pk", "former_customer_id")[: self.batch_size]
        )
        if not due:
            return None
        result = BatchResult()
        for _pk, customer_id in due:
            # Request ids are UUIDs (the log keeps bigint ids): one line per request, no ids.
            self.log_entry(
                run=run, model="access_requests.ErasureRequest", customer_id=customer_id, ids=[], count=1
            ).save()
        ErasureRequest.objects.filter(pk__in=[pk for pk, _customer in due]).delete()
        result.add("access_requests.ErasureRequest", len(due))
        return result
