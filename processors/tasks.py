"""Celery entry point for the processors' daily check of their own settings.

The task keeps the name it was first scheduled under, so messages already queued still find it."""

from __future__ import annotations

from celery import shared_task

from processors.services import check_processors


@shared_task(name="retention.check_processors", acks_late=True)
def check_processors_task() -> dict[str, bool]:
    """Compare each configured processor's settings with the data map (daily); drift is recorded
    as a ProcessorCheck and shown in the admin and on /healthz."""
    return {check.processor: check.ok for check in check_processors()}
