"""The access-request lifecycle as staff and customers drive it: create, extend, reject, retry,
download.

Every change happens in one transaction with its audit event; the export build is enqueued after
commit. The build's own lifecycle (enqueue, claim, build, fail, re-queue, reap) lives in
`access_requests.export.build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from access_requests.clock import can_extend, gdpr_due_date, gdpr_extended_due_date
from access_requests.export.build import enqueue_build
from access_requests.models import AccessRequest
from access_requests.storage import open_export, presigned_download_url
from audit.models import AuditEvent
from customers.models import Customer


class AccessRequestRefused(ValidationError):
    """The request cannot be made or changed as asked; the message says why, for the customer."""


def open_request_for(customer: Customer) -> AccessRequest | None:
    return AccessRequest.objects.filter(customer=customer, status__in=AccessRequest.OPEN_STATUSES).first()


@transaction.atomic
def access_request_create(
    *,
    customer: Customer,
    acting_user: Any,
    channel: str = AccessRequest.Channel.PORTAL,
    identity_verification: str = "",
) -> AccessRequest:
    if channel != AccessRequest.Channel.PORTAL and not identity_verification.strip():
        raise AccessRequestRefused(
            _("Record how the customer's identity was verified for a request received by %(channel)s.")
            % {"channel": AccessRequest.Channel(channel).label},
            code="identity_not_verified",
        )
    existing = open_request_for(customer)
    if existing is not None:
        raise AccessRequestRefused(
            _(
                "You already have a request from %(received)s that is %(status)s. "
                "You can ask again once you have downloaded that copy."
            )
            % {"received": timezone.localdate(existing.received_at).strftime("%d.%m.%Y"),
               "status": existing.get_status_display().lower()},
            code="already_open",
        )  # fmt: skip
    now = timezone.now()
    try:
        with transaction.atomic():
            access_request = AccessRequest.objects.create(
                customer=customer,
                channel=channel,
                identity_verification=identity_verification,
                created_by=acting_user if channel != AccessRequest.Channel.PORTAL else None,
                received_at=now,
                due_on=gdpr_due_date(timezone.localdate(now)),
            )
    except IntegrityError as error:  # another request won the race for the one open slot
        raise AccessRequestRefused(_("You already have an open request."), code="already_open") from error
    AuditEvent.record(
        AuditEvent.Kind.ACCESS_REQUESTED, actor=acting_user, customer_id=customer.pk, target=access_request
    )
    enqueue_build(access_request_id=access_request.pk)
    from access_requests.notifications import notify_received

    transaction.on_commit(lambda: notify_received(access_request_id=access_request.pk))
    return access_request


@transaction.atomic
def access_request_extend(*, access_request: AccessRequest, reason: str, acting_user: Any) -> AccessRequest:
    access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
    if not reason.strip():
        raise AccessRequestRefused(
            _("Give the reason for the extension; the customer is told."), code="no_reason"
        )
    if not access_request.is_open:
        raise AccessRequestRefused(_("Only an open request can be extended."), code="not_open")
    if not can_extend(
        received_on=access_request.received_on,
        already_extended=access_request.is_extended,
        today=timezone.localdate(),
    ):
        raise AccessRequestRefused(
            _("The deadline can be extended once, and only within the first month."), code="cannot_extend"
        )
    access_request.extended_at = timezone.now()
    access_request.extension_reason = reason.strip()
    access_request.due_on = gdpr_extended_due_date(access_request.received_on)
    access_request.save(update_fields=["extended_at", "extension_reason", "due_on"])
    from access_requests.notifications import notify_extended

    transaction.on_commit(lambda: notify_extended(access_request_id=access_request.pk))
    return access_request


@transaction.atomic
def access_request_reject(*, access_request: AccessRequest, reason: str, acting_user: Any) -> AccessRequest:
    access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
    if not reason.strip():
        raise AccessRequestRefused(
            _("Give the reason for the rejection; the customer is told."), code="no_reason"
        )
    if access_request.status not in (AccessRequest.Status.RECEIVED, AccessRequest.Status.FAILED):
        raise AccessRequestRefused(
            _("Only a request that is not being prepared or answered can be rejected."), code="not_rejectable"
        )
    access_request.status = AccessRequest.Status.REJECTED
    access_request.rejection_reason = reason.strip()
    access_request.save(update_fields=["status", "rejection_reason"])
    from access_requests.notifications import notify_rejected

    transaction.on_commit(lambda: notify_rejected(access_request_id=access_request.pk))
    return access_request


@transaction.atomic
def access_request_retry(*, access_request: AccessRequest, acting_user: Any) -> AccessRequest:
    access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
    if access_request.status != AccessRequest.Status.FAILED:
        raise AccessRequestRefused(_("Only a failed build can be retried."), code="not_failed")
    if open_request_for(access_request.customer) is not None:
        raise AccessRequestRefused(_("The customer has another open request."), code="already_open")
    access_request.status = AccessRequest.Status.RECEIVED
    access_request.failure_reason = ""
    access_request.build_attempts = 0
    access_request.progress = 0
    access_request.save(update_fields=["status", "failure_reason", "build_attempts", "progress"])
    enqueue_build(access_request_id=access_request.pk)
    return access_request


# --- Downloads (the customer's side) -----------------------------------------------------------


class ExportUnavailable(AccessRequestRefused):
    """The copy cannot be downloaded (not ready yet, or its file has expired); `code` says which."""


@dataclass(frozen=True)
class ExportDownload:
    """How to hand over one download: a presigned URL (S3), or the open file to stream (local)."""

    filename: str
    url: str | None = None
    file: IO[bytes] | None = None


def export_check_downloadable(access_request: AccessRequest, *, now: datetime | None = None) -> None:
    """Raise ExportUnavailable unless the request has a file that has not expired."""
    now = now or timezone.now()
    downloadable = (AccessRequest.Status.READY, AccessRequest.Status.DOWNLOADED)
    if access_request.status == AccessRequest.Status.EXPIRED or (
        access_request.status in downloadable
        and (access_request.expires_at is None or access_request.expires_at <= now)
    ):
        raise ExportUnavailable(
            _("This copy has expired and its file is deleted. You can ask for a new copy."), code="expired"
        )
    if access_request.status not in downloadable or not access_request.export_name:
        raise ExportUnavailable(_("This copy is not ready to download yet."), code="not_ready")


def export_filename(access_request: AccessRequest) -> str:
    """The name the browser saves the ZIP under: no personal data, only the date and a short id."""
    made_on = timezone.localdate(access_request.ready_at or access_request.received_at)
    return f"wp-hosting-data-{made_on:%Y-%m-%d}-{str(access_request.pk)[:8]}.zip"


@transaction.atomic
def export_download(*, access_request: AccessRequest, user: Any) -> ExportDownload:
    """Hand over the export of a ready (or already downloaded) request that has not expired.

    In one transaction: the download is counted, the request becomes downloaded (so the customer
    may ask again), and an EXPORT_DOWNLOADED audit event is written. With S3 the answer is a
    presigned URL valid at most `PRESIGNED_URL_SECONDS`, sent as an attachment with
    `Cache-Control: no-store`; with local files it is the opened file, so a file that cannot be
    opened rolls the whole download back."""
    access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
    now = timezone.now()
    export_check_downloadable(access_request, now=now)
    filename = export_filename(access_request)
    url = presigned_download_url(access_request.export_name, filename=filename)
    try:
        file = open_export(access_request.export_name) if url is None else None
    except FileNotFoundError as error:  # the hourly expiry got there first
        raise ExportUnavailable(
            _("This copy has expired and its file is deleted. You can ask for a new copy."), code="expired"
        ) from error
    access_request.status = AccessRequest.Status.DOWNLOADED
    access_request.downloaded_at = access_request.downloaded_at or now
    access_request.download_count += 1
    access_request.save(update_fields=["status", "downloaded_at", "download_count"])
    AuditEvent.record(
        AuditEvent.Kind.EXPORT_DOWNLOADED,
        actor=user,
        customer_id=access_request.customer_id,
        target=access_request,
    )
    return ExportDownload(filename=filename, url=url, file=file)
