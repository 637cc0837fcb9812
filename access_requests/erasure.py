"""Erasure on request (GDPR art. 17): a former customer asks for her data to be deleted now.

She asks on /my-data/ and confirms with a code sent to her address; staff approve or reject on the
same clock as access requests (one calendar month, one extension), or approval is automatic after
her confirmation (`ERASURE_AUTO_APPROVE`). An approved erasure runs the purges' own code for her
alone, with her window closed now (`retention.services.erase_customer`): her data at the
processors first, then her copies, then her account. The Accounting Act's period and legal holds
still apply, and the receipt says what was deleted, what was kept, why and until when, and what
each processor confirmed.

Invariants:
- A customer with an active contract cannot ask: her data is needed to deliver and bill.
- The erasure is approved only while no legal hold is active on her; a hold placed later stops the
  purges for her as at night (her rows stay, the request waits).
- The request's row keeps no clear personal data once she is erased; keyed fingerprints of her
  identifiers (`customer_fingerprints`) stay with it and in the file storage's erasure ledger, so
  `reapply_erasures` can find her in a restored backup. A match needs her customer id and one of
  her addresses or her organisation number: a new customer who got her old id after a restore, or
  her coming back as a new customer, is never taken for her.
- The code is kept as a keyed hash, is valid for 15 minutes and allows five tries.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from access_requests.clock import can_extend, gdpr_due_date, gdpr_extended_due_date
from access_requests.models import ErasureRequest
from audit.models import AuditEvent
from customers.models import Contact, Customer, Invoice
from customers.relationship import RelationshipStatus
from processors import registry
from processors.models import ProcessorJob
from retention.models import DeletionLog, LegalHold
from retention.services import erase_customer
from retention.windows import RetentionPeriods, accounting_deletable_on, add_months

logger = logging.getLogger(__name__)

ERASURE_TASK = "access_requests.run_erasure"
CODE_VALID_FOR = timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
LEDGER_DIRECTORY = "erasure-ledger"


class ErasureRefused(Exception):
    """The request cannot go on; `message` says why, in the active language."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- Who may ask -----------------------------------------------------------------------------


def erasure_refusal(
    customer: Customer, *, today: date | None = None, relationship_status: str | None = None
) -> str | None:
    """Why this customer cannot ask for erasure now (None: she can). `relationship_status`, when
    the caller has it already (the /my-data/ summary), saves the query."""
    status = relationship_status or customer.relationship(today=today).status
    if status == RelationshipStatus.ACTIVE:
        return _(
            "You have an active contract with us, and we need your data to deliver and bill the "
            "services. When your contracts have ended you can ask us to delete everything here. To "
            "end a contract, write to our support."
        )
    return None


def open_erasure_request(customer: Customer) -> ErasureRequest | None:
    return ErasureRequest.objects.filter(
        former_customer_id=customer.pk, status__in=ErasureRequest.OPEN_STATUSES
    ).first()


# --- The customer asks and confirms -------------------------------------------------------------


def _code_hash(erasure_request: ErasureRequest, code: str) -> str:
    return salted_hmac("portal.erasure.code", f"{erasure_request.pk}:{code}", algorithm="sha256").hexdigest()


@transaction.atomic
def erasure_request_start(*, customer: Customer, acting_user: Any) -> ErasureRequest:
    """She asks: a new request waiting for her code (or the waiting one, with a new code)."""
    refusal = erasure_refusal(customer)
    if refusal:
        raise ErasureRefused(refusal, code="active")
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    existing = open_erasure_request(customer)
    if existing is not None and existing.status != ErasureRequest.Status.AWAITING_CODE:
        raise ErasureRefused(_("You have already asked us to delete your data."), code="open")
    erasure_request = existing or ErasureRequest.objects.create(
        customer=customer, former_customer_id=customer.pk
    )
    code = f"{secrets.randbelow(10**6):06d}"
    erasure_request.code_hash = _code_hash(erasure_request, code)
    erasure_request.code_sent_at = timezone.now()
    erasure_request.code_attempts = 0
    erasure_request.save(update_fields=["code_hash", "code_sent_at", "code_attempts"])
    AuditEvent.record(
        AuditEvent.Kind.ERASURE_REQUESTED, actor=acting_user, customer_id=customer.pk, target=erasure_request
    )
    from access_requests import notifications

    email = customer.email
    transaction.on_commit(
        lambda: notifications.notify_erasure_code(erasure_request_id=erasure_request.pk, code=code, to=email)
    )
    return erasure_request


@dataclass(frozen=True)
class Confirmed:
    request: ErasureRequest
    token: str  # the receipt page's link (/erasure/<token>/), which outlives her sign-in


def erasure_confirm(*, erasure_request: ErasureRequest, code: str, acting_user: Any) -> Confirmed:
    """She confirms with the code from her e-mail: the request is received (the clock starts),
    and she gets the link of the page that follows it to its receipt (her sign-in goes with her
    data, so the page is reached by the link alone)."""
    with transaction.atomic():
        erasure_request = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
        if erasure_request.status != ErasureRequest.Status.AWAITING_CODE:
            raise ErasureRefused(_("This request has been confirmed already."), code="confirmed")
        sent_at = erasure_request.code_sent_at
        if sent_at is None or timezone.now() > sent_at + CODE_VALID_FOR:
            raise ErasureRefused(_("The code has expired. Ask for a new one."), code="expired")
        if erasure_request.code_attempts >= MAX_CODE_ATTEMPTS:
            raise ErasureRefused(_("Too many wrong codes. Ask for a new one."), code="attempts")
        if not constant_time_compare(_code_hash(erasure_request, code.strip()), erasure_request.code_hash):
            erasure_request.code_attempts += 1
            erasure_request.save(update_fields=["code_attempts"])
            raised = ErasureRefused(_("That is not the code we sent. Try again."), code="wrong")
        else:
            raised = None
            now = timezone.now()
            token = secrets.token_urlsafe(32)
            erasure_request.status = ErasureRequest.Status.RECEIVED
            erasure_request.received_at = now
            erasure_request.due_on = gdpr_due_date(timezone.localdate(now))
            erasure_request.code_hash = ""
            erasure_request.receipt_token_hash = ErasureRequest.receipt_token_hash_of(token)
            erasure_request.save(
                update_fields=["status", "received_at", "due_on", "code_hash", "receipt_token_hash"]
            )
            from access_requests import notifications

            email = erasure_request.customer.email if erasure_request.customer else ""
            request_id = erasure_request.pk
            transaction.on_commit(
                lambda: notifications.notify_erasure_received(
                    erasure_request_id=request_id, token=token, to=email
                )
            )
    if raised is not None:
        raise raised  # after the attempt is counted and committed
    if settings.ERASURE_AUTO_APPROVE:
        erasure_request = erasure_approve(erasure_request=erasure_request, decided_by=None)
    return Confirmed(erasure_request, token)


# --- Staff decide ------------------------------------------------------------------------------


def active_hold_on(customer_id: int) -> LegalHold | None:
    return LegalHold.objects.active().filter(customer_id=customer_id).first()


@transaction.atomic
def erasure_approve(*, erasure_request: ErasureRequest, decided_by: Any) -> ErasureRequest:
    erasure_request = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
    if erasure_request.status != ErasureRequest.Status.RECEIVED:
        raise ErasureRefused(_("Only a received request can be approved."), code="status")
    if active_hold_on(erasure_request.former_customer_id) is not None:
        raise ErasureRefused(
            _(
                "The customer is under a legal hold: her data must be kept while it lasts. Reject the "
                "request with the reason, or approve it once the hold is released."
            ),
            code="hold",
        )
    erasure_request.status = ErasureRequest.Status.ERASING
    erasure_request.decided_by = decided_by if getattr(decided_by, "is_authenticated", False) else None
    erasure_request.decided_at = timezone.now()
    erasure_request.save(update_fields=["status", "decided_by", "decided_at"])
    AuditEvent.record(
        AuditEvent.Kind.ERASURE_APPROVED,
        actor=decided_by,
        customer_id=erasure_request.former_customer_id,
        target=erasure_request,
    )
    # By the task's registered name, after commit (as export.build.enqueue_build): services never
    # import the tasks that call them.
    task = current_app.signature(ERASURE_TASK, kwargs={"erasure_request_id": str(erasure_request.pk)})
    transaction.on_commit(task.delay)
    return erasure_request


@transaction.atomic
def erasure_reject(*, erasure_request: ErasureRequest, decided_by: Any, reason: str) -> ErasureRequest:
    erasure_request = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
    if erasure_request.status not in (ErasureRequest.Status.AWAITING_CODE, ErasureRequest.Status.RECEIVED):
        raise ErasureRefused(_("Only a request not yet approved can be rejected."), code="status")
    if not reason.strip():
        raise ErasureRefused(_("Give the reason for the rejection: the customer is told it."), code="reason")
    erasure_request.status = ErasureRequest.Status.REJECTED
    erasure_request.rejection_reason = reason.strip()
    erasure_request.decided_by = decided_by if getattr(decided_by, "is_authenticated", False) else None
    erasure_request.decided_at = timezone.now()
    erasure_request.finished_at = erasure_request.decided_at
    erasure_request.save(
        update_fields=["status", "rejection_reason", "decided_by", "decided_at", "finished_at"]
    )
    from access_requests import notifications

    request_id = erasure_request.pk
    transaction.on_commit(lambda: notifications.notify_erasure_rejected(erasure_request_id=request_id))
    return erasure_request


@transaction.atomic
def erasure_extend(*, erasure_request: ErasureRequest, decided_by: Any, reason: str) -> ErasureRequest:
    """Once, within the first month, with the reason (GDPR art. 12(3)), as for access requests."""
    erasure_request = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
    if erasure_request.status != ErasureRequest.Status.RECEIVED or erasure_request.received_at is None:
        raise ErasureRefused(_("Only a received request can be extended."), code="status")
    received_on = timezone.localdate(erasure_request.received_at)
    if not can_extend(
        received_on=received_on, already_extended=erasure_request.is_extended, today=timezone.localdate()
    ):
        raise ErasureRefused(
            _("The deadline can be extended once, within the first month."), code="extension"
        )
    if not reason.strip():
        raise ErasureRefused(_("Give the reason for the extension: the customer is told it."), code="reason")
    erasure_request.extended_at = timezone.now()
    erasure_request.extension_reason = reason.strip()
    erasure_request.due_on = gdpr_extended_due_date(received_on)
    erasure_request.save(update_fields=["extended_at", "extension_reason", "due_on"])
    return erasure_request


# --- The erasure --------------------------------------------------------------------------------


def fingerprint(kind: str, value: str) -> str:
    """A keyed hash of one identifier: equal identifiers give equal fingerprints under the same
    key (`ERASURE_FINGERPRINT_KEY`, by default derived from the secret key), and nothing about the
    identifier can be read back without it."""
    secret = settings.ERASURE_FINGERPRINT_KEY or settings.SECRET_KEY
    return salted_hmac(
        "portal.erasure.fingerprint", f"{kind}:{value.strip().lower()}", secret=secret, algorithm="sha256"
    ).hexdigest()


def customer_fingerprints(customer_id: int, emails: Iterable[str], organisation_number: str) -> list[str]:
    """Her customer id's fingerprint first, then one for each address and her organisation number."""
    identifiers = [("email", email) for email in emails if email.strip()]
    if organisation_number.strip():
        identifiers.append(("organisation", organisation_number))
    return [
        fingerprint("customer", str(customer_id)),
        *dict.fromkeys(fingerprint(kind, value) for kind, value in identifiers),
    ]


def _fingerprints_of(customer: Customer) -> list[str]:
    emails = [customer.email, *Contact.objects.filter(customer=customer).values_list("email", flat=True)]
    return customer_fingerprints(customer.pk, emails, customer.organisation_number or "")


@dataclass(frozen=True)
class ErasureAttempt:
    request: ErasureRequest
    done: bool
    waiting_for: str = ""


def erasure_run(*, erasure_request_id: Any) -> ErasureAttempt | None:
    """One attempt at an approved erasure; done once her customer record is gone. Safe to repeat:
    each purge finds what is left of her."""
    erasure_request = ErasureRequest.objects.filter(pk=erasure_request_id).first()
    if erasure_request is None or erasure_request.status != ErasureRequest.Status.ERASING:
        return None
    customer_id = erasure_request.former_customer_id
    customer = Customer.objects.filter(pk=customer_id).first()
    recipients: list[str] = []
    if customer is not None:
        # Read before her rows go: where the receipt is sent, and how a restored backup finds her.
        recipients = [customer.email] if customer.email else []
        erasure_request.fingerprints = _fingerprints_of(customer)
        erasure_request.save(update_fields=["fingerprints"])
        runs = erase_customer(customer_id=customer_id)
    else:
        runs = []
    erasure_request.attempts += 1
    if Customer.objects.filter(pk=customer_id).exists():
        errors = [error for run in runs for error in run.errors]
        skipped = [run.category for run in runs if run.status == run.Status.SKIPPED]
        erasure_request.last_error = "; ".join(
            [*errors, *(f"{category}: another purge was running" for category in skipped)]
        ) or _("her data is kept: a legal hold, or a processor not done yet")
        erasure_request.save(update_fields=["attempts", "last_error"])
        return ErasureAttempt(erasure_request, done=False, waiting_for=erasure_request.last_error)
    erasure_request.receipt = erasure_receipt(customer_id=customer_id, since=erasure_request.decided_at)
    erasure_request.status = ErasureRequest.Status.DONE
    erasure_request.finished_at = timezone.now()
    erasure_request.last_error = ""
    erasure_request.save(update_fields=["attempts", "receipt", "status", "finished_at", "last_error"])
    ledger_write(erasure_request)
    from access_requests import notifications

    notifications.notify_erasure_done(erasure_request_id=erasure_request.pk, to=recipients)
    return ErasureAttempt(erasure_request, done=True)


def erasure_receipt(*, customer_id: int, since: Any) -> dict[str, Any]:
    """What was deleted (per category, from the deletion log of her erasure's runs), what was kept,
    why and until when, and what each processor confirmed: categories, counts, years and dates."""
    periods = RetentionPeriods.from_settings()
    deleted = (
        DeletionLog.objects.filter(customer_id=customer_id, run__erasure_of=customer_id)
        .values("category")
        .annotate(rows=Sum("count"))
        .order_by("category")
    )
    kept: list[dict[str, Any]] = []
    invoices = Invoice.objects.filter(former_customer_id=customer_id, issued_on__isnull=False)
    span = invoices.aggregate(
        first=Min("issued_on"),
        last=Max("issued_on"),
        count=Count("pk", distinct=True),
        paid=Max("payments__paid_on"),
    )
    if span["first"] is not None:
        # The latest voucher of all her invoices decides how long the last of them is kept.
        vouchers = [day for day in (span["last"], span["paid"]) if day is not None]
        until = accounting_deletable_on(vouchers, periods=periods) - timedelta(days=1)
        kept.append(
            {
                "kind": "invoices",
                "category": "invoices",
                "count": span["count"],
                "first_year": span["first"].year,
                "last_year": span["last"].year,
                "until": until.isoformat(),
            }
        )
    audit = AuditEvent.objects.filter(customer_id=customer_id).aggregate(latest=Max("created_at"))
    if audit["latest"] is not None:
        kept.append(
            {
                "kind": "audit",
                "category": "sessions_and_audit",
                "until": add_months(timezone.localdate(audit["latest"]), periods.audit_months).isoformat(),
            }
        )
    confirmed = {
        key: finished
        for key, finished in ProcessorJob.objects.filter(
            customer_id=customer_id,
            kind=ProcessorJob.ERASURE,
            status=ProcessorJob.Status.COMPLETED,
            **({"finished_at__gte": since} if since is not None else {}),
        )
        .values_list("processor")
        .annotate(finished=Max("finished_at"))
    }
    processors = [
        {
            "key": connector.key,
            "name": connector.name,
            "confirmed_at": confirmed[connector.key].isoformat() if connector.key in confirmed else None,
        }
        for connector in registry.erasing_connectors()
    ]
    return {
        "deleted": [{"category": row["category"], "count": row["rows"]} for row in deleted],
        "kept": kept,
        "processors": processors,
        "finished_at": timezone.now().isoformat(),
    }


# --- Surviving a backup restore ---------------------------------------------------------------


def ledger_write(erasure_request: ErasureRequest) -> None:
    """The erasure's fingerprints in the file storage too, outside the database a restore rewinds."""
    entry = {
        "request": str(erasure_request.pk),
        "finished_at": erasure_request.finished_at.isoformat() if erasure_request.finished_at else None,
        "fingerprints": erasure_request.fingerprints,
    }
    storage = storages["default"]
    name = f"{LEDGER_DIRECTORY}/{erasure_request.pk}.json"
    if storage.exists(name):
        storage.delete(name)
    storage.save(name, ContentFile(json.dumps(entry).encode()))


def ledger_entries() -> list[dict[str, Any]]:
    """Every finished erasure: the ledger in the file storage, and the rows in the database."""
    entries: dict[str, dict[str, Any]] = {}
    storage = storages["default"]
    try:
        _directories, files = storage.listdir(LEDGER_DIRECTORY)
    except FileNotFoundError:
        files = []
    for name in files:
        with storage.open(f"{LEDGER_DIRECTORY}/{name}", "rb") as handle:
            entry = json.loads(handle.read())
        entries[entry["request"]] = entry
    for pk, finished_at, fingerprints in ErasureRequest.objects.filter(
        status=ErasureRequest.Status.DONE
    ).values_list("pk", "finished_at", "fingerprints"):
        entries.setdefault(
            str(pk),
            {
                "request": str(pk),
                "finished_at": finished_at.isoformat() if finished_at else None,
                "fingerprints": fingerprints,
            },
        )
    return [entry for entry in entries.values() if entry.get("fingerprints")]


def erased_customers_present() -> list[tuple[int, dict[str, Any]]]:
    """Customers in the database that an erasure in the ledger was for: the same customer id and
    at least one of the same addresses or organisation number (see the invariants)."""
    entries = ledger_entries()
    by_id = {entry["fingerprints"][0]: entry for entry in entries}
    found = []
    contacts: dict[int, list[str]] = {}
    for customer_id, email in Contact.objects.values_list("customer_id", "email"):
        contacts.setdefault(customer_id, []).append(email)
    for customer_id, email, organisation_number in Customer.objects.values_list(
        "pk", "email", "organisation_number"
    ):
        entry = by_id.get(fingerprint("customer", str(customer_id)))
        if entry is None:
            continue
        mine = set(
            customer_fingerprints(
                customer_id, [email, *contacts.get(customer_id, [])], organisation_number or ""
            )[1:]
        )
        if mine & set(entry["fingerprints"][1:]):
            found.append((customer_id, entry))
    return found


def erasures_reapply() -> list[tuple[int, bool]]:
    """After a backup is restored: erase again every customer the ledger says was erased. Answers
    (customer id, erased now) for each one found."""
    outcomes = []
    for customer_id, entry in erased_customers_present():
        if active_hold_on(customer_id) is not None:
            logger.warning("customer %s was erased before, but is under a legal hold now", customer_id)
            outcomes.append((customer_id, False))
            continue
        erase_customer(customer_id=customer_id)
        erased = not Customer.objects.filter(pk=customer_id).exists()
        if erased and not ErasureRequest.objects.filter(pk=entry["request"]).exists():
            # The restored database lost the request's row: put the record of it back.
            ErasureRequest.objects.create(
                pk=entry["request"],
                former_customer_id=customer_id,
                status=ErasureRequest.Status.DONE,
                finished_at=timezone.now(),
                fingerprints=entry["fingerprints"],
            )
        outcomes.append((customer_id, erased))
    return outcomes
