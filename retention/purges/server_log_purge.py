"""Purge of server logs past their window: the nightly sweep behind the S3 lifecycle rule.

The logs are objects in an S3 bucket under a prefix, or files in a local directory when no bucket
is configured (`retention.server_log_store` holds both stores and the lifecycle rule). Each run also
makes sure the bucket's lifecycle rule is there and right, so S3 expires the logs even on nights
the portal is down.

Invariants (besides those in retention/purges/base.py that objects can keep):
- Nothing goes early: an object is deleted only when its creation day is before
  `server_log_cutoff(today)`, the same window function the preview and the customer's page use.
- One batch is one listed page of at most 1,000 keys and one delete_objects call for its due keys
  (plus retries of the keys that call could not delete). Its DeletionLog line counts only keys the
  store confirmed deleted; keys still failing are reported on the PurgeRun and never counted, and
  the next run lists them again, since eligibility comes from `today` and the listing, not from
  what earlier runs did.
- Objects cannot join the database transaction. The store deletes first and the batch's log line
  is written after, in the batch's transaction: a worker killed between the two leaves objects
  deleted without their line, never a line for objects that are still there.
- Two sweeps never run at once: `purge_run`'s advisory lock (there is no row to lock here).
- A dry run lists and counts; it deletes nothing and does not touch the lifecycle configuration.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from retention.models import PurgeRun
from retention.purges.base import BatchResult, PreviewLine, Purge, Tonight
from retention.server_log_store import (
    S3_MAX_KEYS,
    LifecycleChange,
    LocalLogStore,
    S3LogStore,
    ensure_server_log_lifecycle,
    server_log_store,
)
from retention.windows import server_log_cutoff

logger = logging.getLogger(__name__)

# A batch reports this many failed keys one by one; beyond it, one line with the count per code,
# so a bucket that refuses every deletion cannot swell the PurgeRun.
MAX_REPORTED_KEYS = 20


class ServerLogPurge(Purge):
    category = "server_logs"
    batch_size = S3_MAX_KEYS
    # Seconds to wait before the second and third attempt at keys a delete call could not delete.
    retry_delays: tuple[float, ...] = (0.2, 0.5)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_size = max(1, min(self.batch_size, S3_MAX_KEYS))
        # Where the next page of the listing starts (an S3 continuation token, or the last file
        # listed); the listing is walked once per run, as the other purges walk `after_id`.
        self.position: str | None = None
        self.listing_done = False
        self.lifecycle_checked = False

    @cached_property
    def store(self) -> S3LogStore | LocalLogStore:
        return server_log_store()

    def cutoff(self, *, today: date) -> date:
        return server_log_cutoff(today, periods=self.periods)

    def preview(self, *, today: date, tonight: Tonight | None = None) -> list[PreviewLine]:
        cutoff = self.cutoff(today=today)
        due, position = 0, None
        while True:
            page = self.store.list_page(position=position, page_size=self.batch_size)
            due += sum(1 for item in page.objects if item.created_on < cutoff)
            position = page.next_position
            if position is None:
                break
        reason = _("created before %(date)s (%(months)s months)") % {
            "date": date_format(cutoff, "SHORT_DATE_FORMAT"),
            "months": self.periods.server_log_months,
        }
        return [PreviewLine(self.store.label, due, reason)]

    def delete_batch(self, *, today: date, run: PurgeRun) -> BatchResult | None:
        if self.listing_done:
            return None
        result = BatchResult()
        if not self.lifecycle_checked:
            self.lifecycle_checked = True
            result.errors.extend(self.ensure_lifecycle())
        page = self.store.list_page(position=self.position, page_size=self.batch_size)
        self.position = page.next_position
        self.listing_done = page.next_position is None
        cutoff = self.cutoff(today=today)
        due = [item.key for item in page.objects if item.created_on < cutoff]
        if not due:
            return result
        failures = self.delete_with_retries(due)
        deleted = len(due) - len(failures)
        if deleted:
            result.add(self.store.label, deleted)
            self.log_entry(run=run, model=self.store.label, customer_id=None, ids=[], count=deleted).save()
        result.errors.extend(self.failure_report(failures))
        return result

    def ensure_lifecycle(self) -> list[str]:
        """Make sure S3 expires the logs on its own; a failure here is reported, and the sweep,
        which keeps the promise by itself, goes on."""
        if not isinstance(self.store, S3LogStore):
            return []
        try:
            change = ensure_server_log_lifecycle(periods=self.periods, client=self.store.client)
        except (BotoCoreError, ClientError) as error:
            logger.exception("server-log lifecycle rule could not be checked")
            return [f"lifecycle rule not checked: {_error_code(error)}"]
        if change in (LifecycleChange.CREATED, LifecycleChange.CORRECTED):
            logger.info("server-log lifecycle rule %s", change)
        return []

    def delete_with_retries(self, keys: list[str]) -> dict[str, str]:
        """Delete `keys`, retrying the ones the store reports as failed; returns those that still
        fail, with their last error code."""
        failures = self.store.delete(keys=keys)
        for delay in self.retry_delays:
            if not failures:
                break
            self.wait_before_retry(seconds=delay)
            try:
                failures = self.store.delete(keys=list(failures))
            except (BotoCoreError, ClientError) as error:
                # What the first call deleted is gone and must still be logged: keep the batch.
                code = _error_code(error)
                failures = dict.fromkeys(failures, code)
                break
        return failures

    def wait_before_retry(self, *, seconds: float) -> None:
        time.sleep(seconds)

    def failure_report(self, failures: dict[str, str]) -> list[str]:
        attempts = 1 + len(self.retry_delays)
        lines = [
            f"{self.store.label} {key}: {code} (not deleted after {attempts} attempts)"
            for key, code in sorted(failures.items())[:MAX_REPORTED_KEYS]
        ]
        rest = Counter(code for _key, code in sorted(failures.items())[MAX_REPORTED_KEYS:])
        lines.extend(
            f"{self.store.label}: {count} more keys not deleted: {code}"
            for code, count in sorted(rest.items())
        )
        return lines


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or type(error).__name__)
    return type(error).__name__
