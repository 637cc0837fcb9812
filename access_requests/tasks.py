"""Celery entry points for access requests: each takes ids and calls one service.

The build is retried on errors that pass (storage, network, a dropped database connection) with
exponential backoff; each failed attempt puts the request back to `received` so the retry can claim
it, and the last one marks it failed and tells the customer and staff. Any other error is a fault
that retrying will not mend: the request is failed at once. A worker that dies mid-build leaves the
request `building`; `reap_builds_task` puts it back in the queue.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from access_requests.export.build import BUILD_TASK, builds_recover, export_build, export_build_failed
from access_requests.models import AccessRequest
from retention.services import purge_run

logger = logging.getLogger(__name__)

# OSError covers local files, sockets and SMTP; botocore's errors cover S3.
RETRYABLE_ERRORS = (OSError, BotoCoreError, ClientError, OperationalError, InterfaceError)
BUILD_MAX_RETRIES = 4  # five attempts in all: export.MAX_BUILD_ATTEMPTS


def _reason(error: BaseException, *, attempt: int, final: bool) -> str:
    # The kind of error only: a message can hold a path, a key or a row's values.
    kind = type(error).__name__
    code = getattr(error, "errno", None) or getattr(error, "response", {}).get("Error", {}).get("Code")
    label = f"{kind} ({code})" if code else kind
    if final:
        return f"The export could not be built or saved after {attempt} attempts: {label}."
    return f"Attempt {attempt} failed: {label}; retrying."


@shared_task(
    bind=True,
    name=BUILD_TASK,
    acks_late=True,
    autoretry_for=RETRYABLE_ERRORS,
    retry_backoff=30,  # 30 s, 1, 2, 4 minutes (with jitter): a storage outage has time to pass
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=BUILD_MAX_RETRIES,
)
def build_export_task(self: Task[Any, Any], *, access_request_id: str) -> None:
    access_request = AccessRequest.objects.filter(pk=access_request_id).first()
    if access_request is None:
        return
    attempt = self.request.retries + 1
    try:
        export_build(access_request=access_request)
    except RETRYABLE_ERRORS as error:
        final = self.request.retries >= BUILD_MAX_RETRIES
        # The kind of error only: a database error's message can quote a row.
        logger.warning(
            "export of %s: attempt %s failed: %s", access_request_id, attempt, type(error).__name__
        )
        if export_build_failed(
            access_request_id=access_request_id,
            reason=_reason(error, attempt=attempt, final=final),
            final=final,
        ):
            return  # recorded and told; nothing is left to retry
        if final:
            return  # the request left `building` meanwhile (reaped, or another worker has it)
        raise  # autoretry_for schedules the next attempt
    except Exception as error:
        export_build_failed(
            access_request_id=access_request_id,
            reason=_reason(error, attempt=attempt, final=True),
            final=True,
        )
        raise


@shared_task(name="access_requests.reap_builds", acks_late=True)
def reap_builds_task() -> dict[str, int]:
    """Builds whose worker stopped, and requests whose task was lost, go back to the queue (every
    5 minutes, portal/celery.py)."""
    reaped, requeued = builds_recover()
    if reaped or requeued:
        logger.warning("re-queued %s stopped export builds and %s lost ones", reaped, requeued)
    return {"reaped": reaped, "requeued": requeued}


@shared_task(
    name="access_requests.expire_exports",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def expire_exports_task() -> dict[str, int]:
    """Delete exports past their 7 days (hourly, portal/celery.py): the purge of their category."""
    from access_requests.expiry import ExportExpiryPurge

    return dict(purge_run(category=ExportExpiryPurge.category).counts)


@shared_task(
    name="access_requests.run_erasure",
    acks_late=True,
    autoretry_for=RETRYABLE_ERRORS,
    retry_backoff=60,
    max_retries=3,
)
def erasure_run_task(*, erasure_request_id: str) -> bool:
    """One attempt at an approved erasure; one that waits (a processor down, a purge running) is
    tried again by `erasures_continue_task`. Answers whether it is done."""
    from access_requests.erasure import erasure_run

    attempt = erasure_run(erasure_request_id=erasure_request_id)
    return bool(attempt and attempt.done)


@shared_task(name="access_requests.continue_erasures", acks_late=True)
def erasures_continue_task() -> int:
    """Approved erasures not done yet are tried again (hourly, portal/celery.py)."""
    from access_requests.erasure import erasure_run
    from access_requests.models import ErasureRequest

    done = 0
    for pk in ErasureRequest.objects.filter(status=ErasureRequest.Status.ERASING).values_list(
        "pk", flat=True
    ):
        attempt = erasure_run(erasure_request_id=pk)
        done += bool(attempt and attempt.done)
    return done
