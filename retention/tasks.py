"""Celery entry points for the purges: each takes a category and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from retention.services import purge_run


@shared_task(
    name="retention.purge",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def purge_task(*, category: str) -> dict[str, int]:
    """Run one category's purge; a run skipped because another holds the lock returns quietly."""
    run = purge_run(category=category)
    return dict(run.counts)


@shared_task(name="retention.check_processors", acks_late=True)
def check_processors_task() -> dict[str, bool]:
    """Compare each configured processor's settings with the data map (daily); drift is recorded
    as a ProcessorCheck and shown in the admin and on /healthz."""
    from retention.processors.services import check_processors

    return {check.processor: check.ok for check in check_processors()}
