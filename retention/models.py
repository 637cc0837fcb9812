"""Holds, purge runs and the proof of deletion.

Invariants:
- `PurgeRun` and `DeletionLog` are append-only: a database trigger refuses deleting them, and
  refuses changing a `DeletionLog` row or a `PurgeRun` that has finished. They hold ids, counts and
  rule names, never names, e-mail addresses or other personal data.
- A `LegalHold` that is active (not released, not past its end date) blocks the deletion of every
  row of its customer; database triggers (migration 0002) refuse it even from raw SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from database.triggers import Refuse


class LegalHoldQuerySet(models.QuerySet["LegalHold"]):
    def active(self, *, today: date | None = None) -> LegalHoldQuerySet:
        today = today or timezone.localdate()
        return self.filter(released_at__isnull=True).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=today))


class LegalHold(models.Model):
    """Staff stop every purge of one customer, e.g. during a dispute or a request from the police."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.DB_CASCADE, related_name="legal_holds"
    )
    reason = models.TextField(_("reason"), help_text=_("Why the data must be kept. Visible to staff only."))
    ends_on = models.DateField(
        _("ends on"), null=True, blank=True, help_text=_("Last day of the hold; empty until released.")
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("placed by"),
        null=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    placed_at = models.DateTimeField(_("placed"), default=timezone.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("released by"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    released_at = models.DateTimeField(_("released"), null=True, blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        ordering = ["-placed_at"]
        indexes = [
            models.Index(
                fields=["customer"], condition=Q(released_at__isnull=True), name="legalhold_open_idx"
            )
        ]

    def __str__(self) -> str:
        return str(_("Legal hold on customer %(id)s") % {"id": self.customer_id})

    def is_active(self, *, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.released_at is None and (self.ends_on is None or self.ends_on >= today)


class PurgeRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped: another run holds the lock")

    category = models.CharField(_("category"), max_length=64)
    as_of = models.DateField(_("as of"), help_text=_("The day eligibility was computed for."))
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    counts = models.JSONField(_("deleted per model"), default=dict, blank=True)
    batches = models.PositiveIntegerField(_("batches"), default=0)
    longest_batch_seconds = models.FloatField(_("longest batch (s)"), default=0.0)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    cutoff = models.DateField(
        _("cutoff"),
        null=True,
        blank=True,
        help_text=_("Records dated before this day were past their window."),
    )
    errors = models.JSONField(_("errors"), default=list, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    erasure_of = models.BigIntegerField(
        _("erasure on request of customer"),
        null=True,
        blank=True,
        help_text=_(
            "An erasure the customer asked for (GDPR art. 17): the purge's own code for this one "
            "customer, her window closed now. Empty for the nightly purges."
        ),
    )

    class Meta:
        verbose_name = _("purge run")
        verbose_name_plural = _("purge runs")
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["category", "-started_at"], name="purgerun_category_idx")]
        triggers = [
            Refuse(
                name="purge_run_no_delete", message="purge runs are append-only", operation=pgtrigger.Delete
            ),
            Refuse(
                name="purge_run_finished_is_final",
                message="a finished purge run cannot change",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def total_deleted(self) -> int:
        return sum(self.counts.values())


# A DeletionLog line lists the ids it deleted up to this many; beyond it the first and last id
# and the count stand for them (a customer's invoices fit, a million log rows need not).
MAX_LOGGED_IDS = 1000


class DeletionLog(models.Model):
    """One line per customer and category deleted (or per batch, for rows that belong to no
    customer): the proof that a promise was kept. Ids and counts only."""

    run = models.ForeignKey(
        PurgeRun, verbose_name=_("purge run"), on_delete=models.DO_NOTHING, related_name="+"
    )
    category = models.CharField(_("category"), max_length=64)
    model = models.CharField(_("model"), max_length=100)
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True, db_index=True)
    count = models.PositiveIntegerField(_("rows deleted"))
    record_ids = ArrayField(models.BigIntegerField(), verbose_name=_("record ids"), default=list, blank=True)
    first_id = models.BigIntegerField(_("first id"), null=True, blank=True)
    last_id = models.BigIntegerField(_("last id"), null=True, blank=True)
    rule = models.CharField(_("rule"), max_length=200)
    deleted_at = models.DateTimeField(_("deleted"), default=timezone.now)

    class Meta:
        verbose_name = _("deletion log entry")
        verbose_name_plural = _("deletion log")
        ordering = ["-deleted_at", "-pk"]
        triggers = [
            Refuse(
                name="deletion_log_append_only",
                message="the deletion log is append-only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} x{self.count}"

    @classmethod
    def for_rows(
        cls,
        *,
        run: PurgeRun,
        category: str,
        rule: str,
        model: str,
        customer_id: int | None,
        ids: Iterable[int],
        count: int | None = None,
    ) -> DeletionLog:
        """The line for these deleted ids of `model` (unsaved). `count` defaults to the number of
        ids; a line for rows that have no ids to list (files, sessions) gives it alone. A set
        written by the database at once goes through `Purge.log_grouped` instead, in the same shape."""
        ids = sorted(ids)
        return cls(
            run=run,
            category=category,
            model=model,
            customer_id=customer_id,
            count=len(ids) if count is None else count,
            record_ids=ids[:MAX_LOGGED_IDS],
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
            rule=rule,
        )


class AnalyticsIdentifier(models.Model):
    """A Google Analytics client id the customer gave us (from the _ga cookie), so their analytics
    data can be deleted at Google with the rest of their data. Personal data: in the data map."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.DB_CASCADE,
        related_name="analytics_identifiers",
    )
    client_id = models.CharField(_("analytics client id"), max_length=64)
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("analytics identifier")
        verbose_name_plural = _("analytics identifiers")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "client_id"], name="analytics_identifier_unique")
        ]

    def __str__(self) -> str:
        return str(_("Analytics identifier of customer %(id)s") % {"id": self.customer_id})
