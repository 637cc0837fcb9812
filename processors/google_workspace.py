"""Google Workspace: a customer's e-mail in the company's mailboxes (support@, faktura@), through
the Gmail API with a service account's domain-wide delegation (google-api-python-client).

Finding her mail: in each configured mailbox (`GOOGLE_WORKSPACE_MAILBOXES`), the messages from, to
or copied to any address that is or was hers: the customer's, her contacts', and the addresses her
correspondence rows were with (`processors.selectors.erasure_subjects`). Spam and trash count too.

Export: each message's mailbox, date, sender, recipients, subject and text, read lazily page by page,
as the table `google_workspace.Message` under the correspondence category.

Deletion, when her correspondence window closes (after Zendesk, before the portal's own rows):
`users.messages.batchDelete`, at most 1,000 ids a call, permanent. Each call is a `ProcessorJob`
of kind `messages.delete` for one mailbox (its `external_id`) with the message ids (Gmail's hex ids
as signed 64-bit numbers, `message_number`), recorded before it is made and completed when Gmail
answers: a run that stops half-way resumes from the jobs, and messages already gone are not an
error (Gmail answers batchDelete for them as for any other).

Google Vault can keep mail the Gmail API has deleted (a retention rule or hold), and the Vault API
can neither read nor set retention rules, which count from each message's date anyway, not from a
customer's departure. So staff confirm on the Processors page, with the date they looked, that no
Vault rule or hold keeps customer mail (`VaultConfirmation`); the daily check shows drift while
there is no confirmation from the last year, and when a mailbox's delegation is refused.

Nothing here logs or raises a URL: the Gmail search query carries e-mail addresses (so
googleapiclient's request log is held at WARNING, and its HttpError, whose text holds the URL, is
reduced to its status).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from itertools import batched
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ExternalTable,
    ProcessorDeletion,
    ProcessorError,
    ProcessorUnavailable,
)
from processors.selectors import customer_emails, latest_vault_confirmation

if TYPE_CHECKING:
    from customers.models import Customer
    from processors.ledger import JobLedger

# The Google client libraries are imported where they are used (every portal process imports this
# module: the purge asks it whether it is configured).

# googleapiclient logs every request URL at DEBUG, the search query (e-mail addresses) with it.
logging.getLogger("googleapiclient").setLevel(logging.WARNING)

# Reading and permanently deleting mail: batchDelete needs the full scope (gmail.modify only
# trashes). The Workspace admin grants it to the service account's client id (domain-wide delegation).
SCOPE = "https://mail.google.com/"
MESSAGES = "google_workspace.Message"
CATEGORY = "correspondence"
DELETE_MESSAGES = "messages.delete"
# users.messages.list pages hold at most 500 ids; batchDelete takes at most 1,000.
PAGE_SIZE = 500
BATCH_IDS = 1000
TIMEOUT_SECONDS = 30
# A Vault confirmation counts for a year; staff confirm again after looking again.
VAULT_CONFIRMATION_VALID_FOR = timedelta(days=365)
HEADERS = ("Date", "From", "To", "Cc", "Subject")


def message_number(message_id: str) -> int:
    """Gmail's message id (16 hex digits, an unsigned 64-bit number) as the signed 64-bit number a
    ProcessorJob's `target_ids` holds; `message_id_of` turns it back."""
    number = int(message_id, 16)
    if not 0 <= number < 1 << 64:
        raise ValueError(f"not a Gmail message id: {message_id!r}")
    return number - (1 << 64) if number >= 1 << 63 else number


def message_id_of(number: int) -> str:
    return format(number + (1 << 64) if number < 0 else number, "x")


def search_query(email: str) -> str:
    """Gmail's search for messages with `email` in From, To, Cc or Bcc (braces: any of them)."""
    return f"{{from:{email} to:{email} cc:{email} bcc:{email}}}"


@contextmanager
def gmail_errors(action: str) -> Iterator[None]:
    """Translate what the client libraries raise into ProcessorError / ProcessorUnavailable, with
    messages that hold no personal data (an HttpError's text has the URL, and so the query)."""
    import httplib2
    from google.auth import exceptions as auth_exceptions
    from googleapiclient.errors import HttpError

    try:
        yield
    except HttpError as error:
        status = int(error.resp.status)
        message = f"google_workspace: {action}: HTTP {status}"
        if status == 429 or status >= 500:
            raise ProcessorUnavailable(message, status=status) from None
        raise ProcessorError(message, status=status) from None
    except auth_exceptions.RefreshError as error:
        # The token endpoint: an outage when google-auth says it may be retried, else refused
        # (domain-wide delegation not granted for the mailbox or the scope, or a revoked key).
        if getattr(error, "retryable", False):
            raise ProcessorUnavailable(f"google_workspace: {action}: sign-in unavailable") from None
        raise DelegationRefused(
            f"google_workspace: {action}: sign-in refused (domain-wide delegation)"
        ) from None
    except (auth_exceptions.TransportError, httplib2.HttpLib2Error, OSError) as error:
        raise ProcessorUnavailable(f"google_workspace: {action}: {type(error).__name__}") from None


class DelegationRefused(ProcessorError):
    """Google would not sign the service account in as the mailbox."""


def _header(message: dict[str, Any], name: str) -> str:
    for header in message.get("payload", {}).get("headers", []):
        if str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value", ""))
    return ""


def _decoded(part: dict[str, Any]) -> str:
    data = part.get("body", {}).get("data")
    if not data:
        return ""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode("utf-8", errors="replace")


def message_text(payload: dict[str, Any]) -> str:
    """The message's text: its text/plain parts, or its text/html ones without the markup."""
    plain: list[str] = []
    html: list[str] = []

    def walk(part: dict[str, Any]) -> None:
        mime = str(part.get("mimeType", ""))
        if mime == "text/plain":
            plain.append(_decoded(part))
        elif mime == "text/html":
            html.append(_decoded(part))
        for child in part.get("parts", []) or []:
            walk(child)

    walk(payload)
    return "\n".join(plain) if plain else strip_tags("\n".join(html)).strip()


class GoogleWorkspaceConnector(Connector):
    key = "google_workspace"
    name = "Google Workspace"
    processor = "google"
    categories = ("correspondence",)
    export_categories: ClassVar[dict[str, str]] = {MESSAGES: CATEGORY}
    # googleapiclient retries 429 and 5xx answers this many times, with exponential backoff.
    num_retries: ClassVar[int] = 3

    def __init__(self) -> None:
        self.credentials_file = settings.GOOGLE_WORKSPACE_CREDENTIALS_FILE
        self.mailboxes = tuple(settings.GOOGLE_WORKSPACE_MAILBOXES)
        self.api_endpoint = settings.GOOGLE_WORKSPACE_API_ENDPOINT

    def status(self) -> ConnectorStatus:
        missing = [
            name
            for name, value in (
                ("GOOGLE_WORKSPACE_CREDENTIALS_FILE", self.credentials_file),
                ("GOOGLE_WORKSPACE_MAILBOXES", self.mailboxes),
            )
            if not value
        ]
        if missing:
            return ConnectorStatus(False, gettext("Off: %(names)s not set.") % {"names": ", ".join(missing)})
        return ConnectorStatus(
            True, gettext("On: mailboxes %(mailboxes)s.") % {"mailboxes": ", ".join(self.mailboxes)}
        )

    def gmail(self, mailbox: str) -> Any:
        """A Gmail API client signed in as `mailbox` (domain-wide delegation)."""
        import google_auth_httplib2
        import httplib2
        from google.oauth2 import service_account
        from googleapiclient.discovery import build

        try:
            credentials = service_account.Credentials.from_service_account_file(
                self.credentials_file, scopes=[SCOPE], subject=mailbox
            )
        except (OSError, ValueError) as error:
            raise ProcessorError(
                f"google_workspace: GOOGLE_WORKSPACE_CREDENTIALS_FILE cannot be read ({type(error).__name__})"
            ) from None
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=TIMEOUT_SECONDS))
        options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
        return build(
            "gmail", "v1", http=http, client_options=options, cache_discovery=False, static_discovery=True
        )

    # --- Finding a customer's messages ----------------------------------------------------------

    def message_ids(self, gmail: Any, emails: Sequence[str]) -> Iterator[str]:
        """The ids of the mailbox's messages with any of these addresses, each once, page by page."""
        seen: set[str] = set()
        for email in emails:
            page_token = None
            while True:
                with gmail_errors("list messages"):
                    page = (
                        gmail.users()
                        .messages()
                        .list(
                            userId="me",
                            q=search_query(email),
                            includeSpamTrash=True,
                            maxResults=PAGE_SIZE,
                            pageToken=page_token,
                        )
                        .execute(num_retries=self.num_retries)
                    )
                for message in page.get("messages", []) or []:
                    if message["id"] not in seen:
                        seen.add(message["id"])
                        yield message["id"]
                page_token = page.get("nextPageToken")
                if not page_token:
                    break

    # --- Export ----------------------------------------------------------------------------------

    def export_table(self, customer: Customer, name: str) -> ExternalTable | None:
        if name != MESSAGES or not self.is_configured():
            return None
        return ExternalTable(
            name=MESSAGES,
            columns=("mailbox", "message_id", "date", "sender", "recipients", "subject", "text"),
            rows=self._message_rows(customer_emails(customer.pk)),
            description=_("Your e-mails with us in our Google Workspace mailboxes"),
            column_labels=(
                _("Mailbox"),
                _("Message"),
                _("Date"),
                _("From"),
                _("To"),
                _("Subject"),
                _("Text"),
            ),
        )

    def _message_rows(self, emails: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for mailbox in self.mailboxes:
            gmail = self.gmail(mailbox)
            for message_id in self.message_ids(gmail, emails):
                with gmail_errors("read a message"):
                    message = (
                        gmail.users()
                        .messages()
                        .get(userId="me", id=message_id, format="full")
                        .execute(num_retries=self.num_retries)
                    )
                sent = datetime.fromtimestamp(int(message.get("internalDate", 0)) / 1000, tz=UTC)
                recipients = ", ".join(
                    value for value in (_header(message, "To"), _header(message, "Cc")) if value
                )
                yield (
                    mailbox,
                    message_id,
                    sent,
                    _header(message, "From"),
                    recipients,
                    _header(message, "Subject"),
                    message_text(message.get("payload", {})),
                )

    # --- Deletion --------------------------------------------------------------------------------

    def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
        outcome = ProcessorDeletion(self.key, subject.customer_id)
        try:
            for mailbox in self.mailboxes:
                self._delete_in(mailbox, subject, ledger, outcome)
        except ProcessorError as error:
            return outcome.failed(error)
        ledger.erasure_complete()
        outcome.complete = True
        return outcome

    def _delete_in(
        self, mailbox: str, subject: ErasureSubject, ledger: JobLedger, outcome: ProcessorDeletion
    ) -> None:
        gmail = self.gmail(mailbox)
        jobs = [job for job in ledger.outstanding(DELETE_MESSAGES) if job.external_id == mailbox]
        covered = {number for job in jobs for number in job.target_ids}
        found = [number for number in map(message_number, self.message_ids(gmail, subject.emails))]
        for chunk in batched(sorted(set(found) - covered), BATCH_IDS):
            jobs.append(ledger.add(DELETE_MESSAGES, target_ids=chunk, external_id=mailbox))
        for job in jobs:
            ledger.attempted(job)
            try:
                with gmail_errors("delete messages"):
                    gmail.users().messages().batchDelete(
                        userId="me", body={"ids": [message_id_of(number) for number in job.target_ids]}
                    ).execute(num_retries=self.num_retries)
            except ProcessorError as error:
                ledger.failed(job, error=str(error))
                raise
            ledger.completed(job, log_model=MESSAGES, category=CATEGORY)
            outcome.deleted.setdefault(MESSAGES, []).extend(job.target_ids)

    # --- Settings --------------------------------------------------------------------------------

    def check_settings(self) -> list[Drift]:
        """Each mailbox answers as itself through the delegation, and staff have confirmed within
        the year that Google Vault keeps no customer mail."""
        drift = [item for mailbox in self.mailboxes if (item := self._mailbox_drift(mailbox))]
        vault = self._vault_drift()
        return [*drift, *([vault] if vault else [])]

    def _mailbox_drift(self, mailbox: str) -> Drift | None:
        try:
            with gmail_errors("read the mailbox profile"):
                profile = (
                    self.gmail(mailbox).users().getProfile(userId="me").execute(num_retries=self.num_retries)
                )
        except DelegationRefused:
            actual = gettext("refused")
        except ProcessorUnavailable:
            raise
        except ProcessorError as error:
            actual = gettext("refused (HTTP %(status)s)") % {"status": error.status}
        else:
            if str(profile.get("emailAddress", "")).lower() == mailbox.lower():
                return None
            actual = gettext("answers as another mailbox")
        return Drift(
            processor=self.key,
            # The setting's name goes into the logs: the mailbox is named in the fix only.
            setting=gettext("Domain-wide delegation"),
            expected=gettext("granted, scope %(scope)s") % {"scope": SCOPE},
            actual=actual,
            fix=gettext(
                "In the Google Admin console (Security › Access and data control › API controls › "
                "Domain-wide delegation), give the service account's client id the scope %(scope)s "
                "for the mailbox %(mailbox)s, and check that it is a mailbox with Gmail turned on."
            )
            % {"scope": SCOPE, "mailbox": mailbox},
        )

    def _vault_drift(self, *, today: date | None = None) -> Drift | None:
        today = today or timezone.localdate()
        latest = latest_vault_confirmation()
        if latest is not None and latest.confirmed_on >= today - VAULT_CONFIRMATION_VALID_FOR:
            return None
        return Drift(
            processor=self.key,
            setting=gettext("Google Vault retention rules and holds"),
            expected=gettext("confirmed within the last year: none keeps customer mail"),
            actual=(
                gettext("last confirmed on %(day)s") % {"day": latest.confirmed_on.isoformat()}
                if latest
                else gettext("never confirmed")
            ),
            fix=gettext(
                "In Google Vault (Retention), check that no retention rule or hold covers the mailboxes "
                "%(mailboxes)s beyond the policy, then confirm it with the date on the Processors page."
            )
            % {"mailboxes": ", ".join(self.mailboxes)},
        )
