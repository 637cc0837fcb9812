"""What the processor connectors record in the portal: the daily checks of each processor's own
settings, and the steps of deleting a customer's data at a processor.

The tables were created by the retention app (migration retention 0004) and keep their names; the
models moved here with `SeparateDatabaseAndState` (processors 0001, retention 0005). Rows hold the
processors' ids, setting names and customer ids only, never e-mail addresses or names.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from retention.models import PurgeRun


class ProcessorCheck(models.Model):
    """One daily comparison of a processor's own settings with the data map (processors.services).
    `drift` lists what differs, each with the fix to make; ids and setting names only."""

    processor = models.CharField(_("processor"), max_length=32)
    checked_at = models.DateTimeField(_("checked"), default=timezone.now)
    ok = models.BooleanField(_("matches the policy"))
    drift = models.JSONField(
        _("drift"), default=list, blank=True, help_text=_("A list of {setting, expected, actual, fix}.")
    )
    error = models.TextField(_("error"), blank=True, help_text=_("Why the check could not be made."))

    class Meta:
        db_table = "retention_processorcheck"
        verbose_name = _("processor check")
        verbose_name_plural = _("processor checks")
        ordering = ["-checked_at", "-pk"]
        indexes = [models.Index(fields=["processor", "-checked_at"], name="processorcheck_latest_idx")]

    def __str__(self) -> str:
        return f"{self.processor} {self.checked_at:%Y-%m-%d %H:%M}"


class ProcessorJob(models.Model):
    """One step of deleting a customer's data at a processor (a bulk ticket deletion, a user's
    permanent deletion, a per-user deletion request), or the `erasure` marker that says every step
    at that processor is done. A step that is not completed is retried by the next purge run:
    these rows are how the purge keeps track of what is still to delete at the processor, after the
    processor has stopped finding it by e-mail. Holds the processor's ids only, never e-mail
    addresses or names; `customer_id` is a plain number so the rows outlive the customer."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending: done on the next run")
        SUBMITTED = "submitted", _("Submitted: the processor is working on it")
        COMPLETED = "completed", _("Completed")

    ERASURE = "erasure"

    processor = models.CharField(_("processor"), max_length=32)
    kind = models.CharField(_("kind"), max_length=32)
    customer_id = models.BigIntegerField(_("customer id"))
    target_ids = ArrayField(
        models.BigIntegerField(),
        verbose_name=_("processor's ids"),
        default=list,
        blank=True,
        help_text=_("What the step deletes, as the processor's ids (tickets, a user)."),
    )
    external_id = models.CharField(_("processor's job id"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    run = models.ForeignKey(
        PurgeRun,
        verbose_name=_("purge run"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        help_text=_("The purge run that last worked on it."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        db_table = "retention_processorjob"
        verbose_name = _("processor job")
        verbose_name_plural = _("processor jobs")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The purge's lookups: a customer's steps at one processor, and the erasure markers.
            models.Index(
                fields=["customer_id", "processor", "kind", "status"], name="processorjob_customer_idx"
            ),
            models.Index(fields=["processor", "-created_at"], name="processorjob_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.processor} {self.kind} ({self.get_status_display()})"


class ProcessorOverview(ProcessorCheck):
    """The admin's "Processors" page (processors/admin.py): each processor, what it holds, its last
    check and its last deletion jobs. A proxy, so the page has its place and permission in the admin."""

    class Meta:
        proxy = True
        verbose_name = _("processor")
        verbose_name_plural = _("processors")


class VaultConfirmation(models.Model):
    """Staff's word, with the date they looked, that no Google Vault retention rule or hold keeps
    customer mail past the portal's deletion of it. Vault can keep what the Gmail API deletes, and
    its API can neither read nor set retention rules, so this is the one way the portal knows; the
    Google Workspace check reports drift while there is none from the last year. The staff member is
    kept by id and name (staff are not customers: no personal data of a customer here)."""

    confirmed_on = models.DateField(
        _("checked in Google Vault on"),
        help_text=_("The day you looked at Vault's retention rules and holds."),
    )
    confirmed_by_id = models.BigIntegerField(_("confirmed by (user id)"))
    confirmed_by_name = models.CharField(_("confirmed by"), max_length=150)
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        verbose_name = _("Google Vault confirmation")
        verbose_name_plural = _("Google Vault confirmations")
        ordering = ["-confirmed_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.confirmed_on:%Y-%m-%d} {self.confirmed_by_name}"
