"""A task for the logging tests: it logs, through structlog and through plain logging."""

from __future__ import annotations

import logging

import structlog
from celery import shared_task

task_logger = structlog.get_logger("tests.security.task")


@shared_task(name="tests.security.log_from_a_task")
def log_from_a_task() -> None:
    task_logger.info("task_ran")
    logging.getLogger("tests.security.task").info("plain logging in a task")
