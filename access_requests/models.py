"""Access requests (GDPR art. 15) and the exports that answer them.

Lifecycle: received → building → ready → downloaded → expired; a build that fails for good ends
in failed (staff may retry it: back to received); staff may reject a request with a reason.
Invariants:
- A customer has at most one open request (received, building or ready): a partial unique index.
- A build is claimed with a conditional UPDATE (received → building), so two workers never build
  the same export; `build_heartbeat_at` lets the reaper find builds whose worker died.
- The export file lives in the storage backend under `export_name`; it is deleted when the request
  expires (7 days after ready), and the row keeps no copy of the data.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from access_requests.clock import gdpr_extended_due_date
from customers.models import Customer


class AccessRequest(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        BUILDING = "building", _("Being prepared")
        READY = "ready", _("Ready to download")
        DOWNLOADED = "downloaded", _("Downloaded")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Failed")
        REJECTED = "rejected", _("Rejected")

    OPEN_STATUSES = (Status.RECEIVED, Status.BUILDING, Status.READY)

    class Channel(models.TextChoices):
        PORTAL = "portal", _("The customer portal")
        EMAIL = "email", _("E-mail")
        PHONE = "phone", _("Phone")
        LETTER = "letter", _("Letter")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.DB_CASCADE, related_name="access_requests"
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    channel = models.CharField(
        _("received through"), max_length=16, choices=Channel.choices, default=Channel.PORTAL
    )
    identity_verification = models.TextField(
        _("how identity was verified"),
        blank=True,
        help_text=_("For requests received by e-mail, phone or letter: how we know it is the customer."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("registered by"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    due_on = models.DateField(_("due"))
    extended_at = models.DateTimeField(_("extended"), null=True, blank=True)
    extension_reason = models.TextField(_("reason for extension"), blank=True)
    rejection_reason = models.TextField(_("reason for rejection"), blank=True)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    build_attempts = models.PositiveSmallIntegerField(_("build attempts"), default=0)
    build_heartbeat_at = models.DateTimeField(_("last sign of the build"), null=True, blank=True)
    failure_reason = models.TextField(_("why the build failed"), blank=True)
    ready_at = models.DateTimeField(_("ready"), null=True, blank=True)
    expires_at = models.DateTimeField(_("export expires"), null=True, blank=True)
    downloaded_at = models.DateTimeField(_("first downloaded"), null=True, blank=True)
    download_count = models.PositiveIntegerField(_("downloads"), default=0)
    export_name = models.CharField(_("export file"), max_length=255, blank=True)
    export_size = models.PositiveBigIntegerField(_("export size (bytes)"), null=True, blank=True)
    export_sha256 = models.CharField(_("export SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("access request")
        verbose_name_plural = _("access requests")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["received", "building", "ready"]),
                name="access_request_one_open_per_customer",
                violation_error_message=_("The customer already has an open access request."),
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_on"], name="access_request_status_due_idx"),
            models.Index(fields=["status", "expires_at"], name="access_request_expiry_idx"),
            # The staff changelist's default order (newest first).
            models.Index(fields=["-received_at"], name="access_request_received_idx"),
        ]

    def __str__(self) -> str:
        return str(_("Access request %(id)s") % {"id": str(self.pk)[:8]})

    def get_absolute_url(self) -> str:
        return reverse("access_requests:detail", kwargs={"request_id": self.pk})

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_extended(self) -> bool:
        return self.extended_at is not None

    @property
    def received_on(self) -> date:
        return timezone.localdate(self.received_at)

    @property
    def extended_due_on(self) -> date:
        return gdpr_extended_due_date(self.received_on)


class ErasureRequest(models.Model):
    """A customer's request to have her data deleted now (GDPR art. 17), and its receipt.

    Lifecycle: awaiting_code (she asked; a code went to her address) → received (she confirmed
    with the code; on the GDPR clock from then) → erasing (approved: the purges run for her; a
    processor that is down keeps it here until the next attempt) → done; or rejected, with a reason.
    Invariants:
    - One open request per customer (a partial unique index).
    - Once done, the row keeps no clear personal data: the customer link is gone with her record
      (SET NULL), the receipt holds categories, counts, years and dates, and `fingerprints` keyed
      hashes of her identifiers (access_requests.erasure), so the erasure can be repeated after a
      backup from before it is restored (`manage.py reapply_erasures`).
    - The receipt page is reached by an unguessable token whose SHA-256 only is kept.
    """

    class Status(models.TextChoices):
        AWAITING_CODE = "awaiting_code", _("Waiting for the customer's code")
        RECEIVED = "received", _("Received")
        ERASING = "erasing", _("Being deleted")
        DONE = "done", _("Done: deleted")
        REJECTED = "rejected", _("Rejected")

    OPEN_STATUSES = (Status.AWAITING_CODE, Status.RECEIVED, Status.ERASING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="erasure_requests",
    )
    # The customer's id, kept after her record has gone (the purge runs and deletion log name it).
    former_customer_id = models.BigIntegerField(_("customer id"), db_index=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.AWAITING_CODE
    )
    asked_at = models.DateTimeField(_("asked"), default=timezone.now)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    due_on = models.DateField(_("due"), null=True, blank=True)
    extended_at = models.DateTimeField(_("extended"), null=True, blank=True)
    extension_reason = models.TextField(_("reason for extension"), blank=True)
    rejection_reason = models.TextField(_("reason for rejection"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    code_hash = models.CharField(_("confirmation code (hash)"), max_length=128, blank=True)
    code_sent_at = models.DateTimeField(_("code sent"), null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(_("code attempts"), default=0)
    attempts = models.PositiveSmallIntegerField(_("erasure attempts"), default=0)
    last_error = models.TextField(_("what is still waiting"), blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    receipt = models.JSONField(_("receipt"), default=dict, blank=True)
    receipt_token_hash = models.CharField(_("receipt link (hash)"), max_length=64, blank=True)
    fingerprints = ArrayField(
        models.CharField(max_length=64),
        verbose_name=_("keyed fingerprints"),
        default=list,
        blank=True,
        help_text=_("Keyed hashes of the customer's identifiers: no clear personal data."),
    )

    class Meta:
        verbose_name = _("erasure request")
        verbose_name_plural = _("erasure requests")
        ordering = ["-asked_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["former_customer_id"],
                condition=Q(status__in=["awaiting_code", "received", "erasing"]),
                name="erasure_request_one_open_per_customer",
                violation_error_message=_("The customer already has an open erasure request."),
            )
        ]
        indexes = [models.Index(fields=["status", "due_on"], name="erasure_request_status_due_idx")]

    def __str__(self) -> str:
        return str(_("Erasure request %(id)s") % {"id": str(self.pk)[:8]})

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_extended(self) -> bool:
        return self.extended_at is not None

    @staticmethod
    def receipt_token_hash_of(token: str) -> str:
        """What is kept of a receipt link: its SHA-256."""
        return hashlib.sha256(token.encode()).hexdigest()

    def is_overdue(self, *, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return (
            self.status in (self.Status.RECEIVED, self.Status.ERASING)
            and self.due_on is not None
            and (self.due_on < today)
        )
