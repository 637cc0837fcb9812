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
