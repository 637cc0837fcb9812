"""The export build's whole lifecycle: enqueue, claim, build, fail, re-queue, reap and recover.

Invariants:
- `enqueue_build` is the one way a build is queued (after commit, by the task's name, so this
  module does not import the tasks that call it). Queuing twice is harmless: the claim lets one
  build run.
- A build is claimed (received -> building, `build_claim`, one conditional UPDATE) before it
  starts, and only a row still `building` becomes `ready`; a build that finds its row gone,
  rejected or taken back by the reaper stops and deletes anything it saved.
- Every attempt is counted on the row (`build_attempts`); past `MAX_BUILD_ATTEMPTS` the request is
  failed for good and the customer and staff are told, so a request never loops or hangs.
- The stored name has a random part (`exports/<request id>-<token>.zip`): the request id alone does
  not lead to the file.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
from datetime import datetime, timedelta
from typing import IO, Any

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from access_requests.export.archive import BuildStopped, ExportWriter
from access_requests.models import AccessRequest
from access_requests.storage import EXPORT_DIRECTORY, delete_export, export_storage
from retention.windows import RetentionPeriods, export_expires_at

logger = logging.getLogger(__name__)

# A ZIP up to this size stays in memory; a larger one spills to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024
DIGEST_CHUNK_BYTES = 1024 * 1024
# A build that has used this many attempts (task retries and reaped builds together) is failed
# for good instead of started again: a customer too large for the worker must not loop forever.
MAX_BUILD_ATTEMPTS = 5
# A request waiting this long without a build is queued again (its task was lost): longer than the
# longest retry backoff (10 minutes, access_requests/tasks.py).
REQUEUE_AFTER = timedelta(minutes=15)
# The Celery task that runs `export_build` (access_requests/tasks.py registers it under this name).
BUILD_TASK = "access_requests.build_export"


def enqueue_build(*, access_request_id: Any) -> None:
    """Queue the build of one request once the current transaction commits."""
    task = current_app.signature(BUILD_TASK, kwargs={"access_request_id": str(access_request_id)})
    transaction.on_commit(task.delay)


def build_stale_after() -> timedelta:
    """How long a build may go without a heartbeat before it counts as stopped (its worker died):
    EXPORT_BUILD_STALE_SECONDS, 10 minutes by default. Heartbeats come every second or so
    (export.archive.PROGRESS_SECONDS)."""
    return timedelta(seconds=settings.EXPORT_BUILD_STALE_SECONDS)


def _stopped_build(cutoff: datetime) -> Q:
    return Q(status=AccessRequest.Status.BUILDING, build_heartbeat_at__lt=cutoff)


def build_claim(*, access_request_id: Any) -> bool:
    """Claim the build in one conditional UPDATE: a waiting request (received → building), or a
    build whose worker stopped (no heartbeat for `build_stale_after()`), as when the broker hands
    a dead worker's message to another. False if a live worker has it, or it is no longer waiting."""
    waiting_or_stopped = Q(status=AccessRequest.Status.RECEIVED) | _stopped_build(
        timezone.now() - build_stale_after()
    )
    claimed = AccessRequest.objects.filter(waiting_or_stopped, pk=access_request_id).update(
        status=AccessRequest.Status.BUILDING, progress=0, build_heartbeat_at=timezone.now()
    )
    return claimed == 1


def _export_name(access_request: AccessRequest) -> str:
    return f"{EXPORT_DIRECTORY}/{access_request.pk}-{secrets.token_urlsafe(24)}.zip"


def _digest(archive: IO[bytes]) -> tuple[int, str]:
    archive.seek(0)
    sha256 = hashlib.sha256()
    size = 0
    while chunk := archive.read(DIGEST_CHUNK_BYTES):
        sha256.update(chunk)
        size += len(chunk)
    archive.seek(0)
    return size, sha256.hexdigest()


def _discard(name: str | None) -> None:
    """Delete a file saved by a build that did not finish; the expiry's sweep catches any that
    cannot be deleted now."""
    if not name:
        return
    try:
        delete_export(name)
    except Exception:
        logger.exception("could not delete the unfinished export %s; the expiry sweep will", name)


def export_build(*, access_request: AccessRequest) -> AccessRequest | None:
    """Build the export of one access request, save it to the export storage and mark the request
    ready. Returns None, having done nothing, when the build is not this worker's to do (another
    has claimed it, or the request is no longer waiting), or when the request stopped being built
    meanwhile."""
    if not build_claim(access_request_id=access_request.pk):
        return None
    AccessRequest.objects.filter(pk=access_request.pk).update(build_attempts=F("build_attempts") + 1)
    access_request = AccessRequest.objects.select_related("customer").get(pk=access_request.pk)
    if access_request.build_attempts > MAX_BUILD_ATTEMPTS:
        export_build_failed(
            access_request_id=access_request.pk,
            reason=f"The build stopped {MAX_BUILD_ATTEMPTS} times without finishing "
            "(a worker was stopped or ran out of resources).",
            final=True,
        )
        return None

    saved_name: str | None = None
    try:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as archive:
            writer = ExportWriter(
                access_request=access_request, customer=access_request.customer, archive=archive
            )
            writer.write()
            size, sha256 = _digest(archive)
            saved_name = export_storage().save(_export_name(access_request), File(archive))
        ready_at = timezone.now()
        marked_ready = AccessRequest.objects.filter(
            pk=access_request.pk, status=AccessRequest.Status.BUILDING
        ).update(
            status=AccessRequest.Status.READY,
            progress=100,
            ready_at=ready_at,
            expires_at=export_expires_at(ready_at, periods=RetentionPeriods.from_settings()),
            export_name=saved_name,
            export_size=size,
            export_sha256=sha256,
            failure_reason="",
            build_heartbeat_at=ready_at,
        )
    except BuildStopped:
        logger.info("export of %s stopped: the request is no longer being built", access_request.pk)
        _discard(saved_name)
        return None
    except BaseException:
        _discard(saved_name)
        raise
    if not marked_ready:
        _discard(saved_name)
        return None

    from access_requests.notifications import notify_ready

    request_id = access_request.pk
    transaction.on_commit(lambda: notify_ready(access_request_id=request_id), robust=True)
    access_request.refresh_from_db()
    return access_request


def export_build_failed(*, access_request_id: Any, reason: str, final: bool) -> bool:
    """Record a failed build attempt. Until the last attempt the request goes back to `received`
    so the retry can claim it; after it, the request is `failed` and the customer and staff are
    told. `reason` names the kind of error only (it is shown to staff; no personal data).
    Returns whether the request is now failed."""
    row = AccessRequest.objects.filter(pk=access_request_id).values("build_attempts").first()
    if row is None:
        return False
    final = final or row["build_attempts"] >= MAX_BUILD_ATTEMPTS
    updated = AccessRequest.objects.filter(pk=access_request_id, status=AccessRequest.Status.BUILDING).update(
        status=AccessRequest.Status.FAILED if final else AccessRequest.Status.RECEIVED,
        failure_reason=reason,
        progress=0,
    )
    if not (updated and final):
        return False
    from access_requests.notifications import notify_failed

    transaction.on_commit(lambda: notify_failed(access_request_id=access_request_id), robust=True)
    return True


def builds_reap(*, stale_after: timedelta | None = None) -> list[AccessRequest]:
    """Builds whose worker stopped (no heartbeat for `stale_after`) go back to received and are
    queued again: a request is never stuck in building."""
    cutoff = timezone.now() - (stale_after or build_stale_after())
    reaped = []
    for access_request in AccessRequest.objects.filter(_stopped_build(cutoff)):
        with transaction.atomic():
            updated = AccessRequest.objects.filter(_stopped_build(cutoff), pk=access_request.pk).update(
                status=AccessRequest.Status.RECEIVED, progress=0
            )
            if updated:
                enqueue_build(access_request_id=access_request.pk)
                reaped.append(access_request)
    return reaped


def builds_requeue_waiting(*, stale_after: timedelta = REQUEUE_AFTER) -> list[Any]:
    """Requests left waiting in `received` with no sign of a build for `stale_after` are queued
    again: the task that should build them was lost (the broker was down when the request was made,
    or the last retry found the request taken). `stale_after` is longer than the longest retry
    backoff, and queuing twice is harmless: the claim lets one build run. Returns their ids."""
    cutoff = timezone.now() - stale_after
    waiting = AccessRequest.objects.filter(status=AccessRequest.Status.RECEIVED).filter(
        Q(build_heartbeat_at__lt=cutoff) | Q(build_heartbeat_at__isnull=True, received_at__lt=cutoff)
    )
    requeued = []
    for request_id in waiting.values_list("pk", flat=True):
        # The heartbeat marks the re-queue, so a lost task is queued again at most every `stale_after`.
        if AccessRequest.objects.filter(pk=request_id, status=AccessRequest.Status.RECEIVED).update(
            build_heartbeat_at=timezone.now()
        ):
            enqueue_build(access_request_id=request_id)
            requeued.append(request_id)
    return requeued


def builds_recover() -> tuple[int, int]:
    """The reaper (every 5 minutes): builds whose worker stopped go back to the queue
    (`builds_reap`), and so do requests whose task was lost. Returns both counts."""
    reaped = builds_reap()
    requeued = builds_requeue_waiting()
    return len(reaped), len(requeued)
