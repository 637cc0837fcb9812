"""Zendesk: a customer's tickets and end user, through zenpy (the maintained Zendesk client).

Export: the tickets a customer's addresses requested (the search export API, cursor-paged, so
more than the search API's 1,000 results), each with its comments.

Deletion, in the order Zendesk needs it (it does not delete a user's closed tickets by itself):
1. tickets: bulk delete (`tickets/destroy_many`, 100 ids a job), then permanently
   (`deleted_tickets/destroy_many`), each an asynchronous job polled until it completes;
2. the end user: delete, then permanently delete (`deleted_users/{id}`). Agents and admins are
   never deleted, whatever address they share with a customer.
Each step is a `ProcessorJob` (see `processors.ledger`): once a ticket is deleted,
Zendesk's search no longer finds it, so the permanent deletion that must follow is found from the
job rows, never from a new search.

Rate limits: zenpy waits out a 429's Retry-After itself and tries again, within a budget
(`ZENDESK_RATE_LIMIT_WAIT_SECONDS` per operation); past it the operation fails as unavailable and
the next run picks it up. Other transient failures (413, 503, dropped connections) are retried three
times by the transport (zenpy's own urllib3 `Retry`, made explicit here because we bring the
session). Nothing here logs or raises a query string: Zendesk's search URLs carry e-mail addresses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import batched
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter

from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ExternalTable,
    JobFailed,
    JobStillRunning,
    ProcessorDeletion,
    ProcessorError,
    ProcessorUnavailable,
)
from processors.models import ProcessorJob
from processors.selectors import customer_emails

if TYPE_CHECKING:
    from zenpy import Zenpy

    from customers.models import Customer
    from processors.ledger import JobLedger

# zenpy is imported where it is used: every portal process imports this module (the purge asks it
# whether it is configured), and zenpy takes most of a second to import.

# zenpy logs every request URL (with the search query, an e-mail address) and every answer at
# DEBUG; the portal's logs must never hold an address, whatever LOG_LEVEL says.
logging.getLogger("zenpy").setLevel(logging.INFO)

ZENDESK_DOMAIN = "zendesk.com"
# The search export API's largest page; tickets/destroy_many and deleted_tickets/destroy_many take
# at most 100 ids.
SEARCH_PAGE_SIZE = 1000
BULK_IDS = 100
TIMEOUT_SECONDS = 30

TICKETS = "zendesk.Ticket"
USERS = "zendesk.User"
CATEGORY = "correspondence"

DELETE_TICKETS = "tickets.delete"
PURGE_TICKETS = "tickets.purge"
DELETE_USER = "user.delete"
PURGE_USER = "user.purge"

JobState = Literal["completed", "failed", "gone"]


class RoutedAdapter(HTTPAdapter):
    """Sends requests for https://<subdomain>.zendesk.com to another base URL (`ZENDESK_BASE_URL`:
    an egress proxy, or the tests' local Zendesk). zenpy builds every URL from the subdomain and has
    no base-URL option; it recognises its answers by that address, so each answer keeps the request
    zenpy made."""

    def __init__(self, *, public_url: str, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.public_url = public_url.rstrip("/")
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if not url.startswith(self.public_url + "/"):
            return super().send(request, *args, **kwargs)
        routed = request.copy()
        routed.url = self.base_url + url[len(self.public_url) :]
        response = super().send(routed, *args, **kwargs)
        response.request = request
        return response


def zendesk_session(*, subdomain: str, base_url: str) -> requests.Session:
    from zenpy import Zenpy

    # zenpy mounts this adapter itself only on a session it makes; with ours it is explicit:
    # urllib3 retries 413 and 503 answers and dropped connections three times, and leaves 429 to
    # zenpy's Retry-After handling.
    adapter_options = Zenpy.http_adapter_kwargs()
    session = requests.Session()
    session.mount("https://", HTTPAdapter(**adapter_options))
    session.mount("http://", HTTPAdapter(**adapter_options))
    if base_url:
        public_url = f"https://{subdomain}.{ZENDESK_DOMAIN}"
        session.mount(
            public_url + "/", RoutedAdapter(public_url=public_url, base_url=base_url, **adapter_options)
        )
    return session


def _where(response: Any) -> str:
    """`METHOD /path` of the request an answer belongs to, without its query string."""
    request = getattr(response, "request", None)
    if request is None or not request.url:
        return "?"
    return f"{request.method} {urlsplit(request.url).path}"


@contextmanager
def zendesk_errors(action: str) -> Iterator[None]:
    """Translate what zenpy and requests raise into ProcessorError / ProcessorUnavailable, with
    messages that hold no personal data."""
    from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, ZenpyException

    try:
        yield
    except RatelimitBudgetExceeded as error:
        raise ProcessorUnavailable(
            f"zendesk: {action}: still rate-limited (429) after waiting "
            f"{settings.ZENDESK_RATE_LIMIT_WAIT_SECONDS} s",
            status=429,
        ) from error
    except (APIException, requests.HTTPError) as error:
        response = error.response
        status = getattr(response, "status_code", None)
        message = f"zendesk: {action}: HTTP {status} on {_where(response)}"
        if status is None or status == 429 or status >= 500:
            raise ProcessorUnavailable(message, status=status) from error
        raise ProcessorError(message, status=status) from error
    except requests.RequestException as error:
        # ConnectionError, Timeout, RetryError: their messages carry the URL, so only the kind.
        raise ProcessorUnavailable(f"zendesk: {action}: {type(error).__name__}") from error
    except ZenpyException as error:
        raise ProcessorError(f"zendesk: {action}: unexpected answer ({type(error).__name__})") from error


class ZendeskConnector(Connector):
    key = "zendesk"
    name = "Zendesk"
    processor = "zendesk"
    categories = ("correspondence",)
    export_categories: ClassVar[dict[str, str]] = {TICKETS: CATEGORY}

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.subdomain = settings.ZENDESK_SUBDOMAIN
        self.email = settings.ZENDESK_EMAIL
        self.token = settings.ZENDESK_API_TOKEN
        self.base_url = settings.ZENDESK_BASE_URL
        self.job_wait = settings.ZENDESK_JOB_WAIT_SECONDS
        self.poll_every = settings.ZENDESK_JOB_POLL_SECONDS
        self.sleep = sleep

    def status(self) -> ConnectorStatus:
        missing = [
            name
            for name, value in (
                ("ZENDESK_SUBDOMAIN", self.subdomain),
                ("ZENDESK_EMAIL", self.email),
                ("ZENDESK_API_TOKEN", self.token),
            )
            if not value
        ]
        if missing:
            return ConnectorStatus(False, str(_("Off: %(names)s not set.") % {"names": ", ".join(missing)}))
        where = self.base_url or f"https://{self.subdomain}.{ZENDESK_DOMAIN}"
        return ConnectorStatus(True, str(_("On: %(where)s.") % {"where": where}))

    def client(self) -> Zenpy:
        from zenpy import Zenpy

        return Zenpy(
            subdomain=self.subdomain,
            email=self.email,
            token=self.token,
            session=zendesk_session(subdomain=self.subdomain, base_url=self.base_url),
            timeout=TIMEOUT_SECONDS,
            ratelimit_budget=settings.ZENDESK_RATE_LIMIT_WAIT_SECONDS,
            # A cached job status would never move on from "queued".
            disable_cache=True,
        )

    # --- Finding a customer's tickets and users --------------------------------------------------

    def requested_tickets(self, client: Zenpy, emails: Sequence[str]) -> Iterator[Any]:
        """The tickets these addresses requested, each once, page by page (search export API)."""
        seen: set[int] = set()
        for email in emails:
            with zendesk_errors("search tickets"):
                results = client.search_export(
                    type="ticket", requester=email, cursor_pagination=SEARCH_PAGE_SIZE
                )
                for ticket in results:
                    if ticket.id not in seen:
                        seen.add(ticket.id)
                        yield ticket

    def end_user_ids(self, client: Zenpy, emails: Sequence[str]) -> set[int]:
        found = set()
        for email in emails:
            with zendesk_errors("search users"):
                for user in client.users.search(query=email):
                    if (user.email or "").lower() == email and user.role == "end-user":
                        found.add(int(user.id))
        return found

    # --- Export ----------------------------------------------------------------------------------

    def export_table(self, customer: Customer, name: str) -> ExternalTable | None:
        if name != TICKETS or not self.is_configured():
            return None
        return ExternalTable(
            name=TICKETS,
            columns=("ticket_id", "subject", "status", "created_at", "updated_at", "comments"),
            rows=self._ticket_rows(customer_emails(customer.pk)),
            description=_("Your support tickets at Zendesk, with every comment"),
            column_labels=(_("Ticket"), _("Subject"), _("Status"), _("Opened"), _("Updated"), _("Comments")),
        )

    def _ticket_rows(self, emails: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        client = self.client()
        for ticket in self.requested_tickets(client, emails):
            with zendesk_errors("read comments"):
                comments = [
                    {
                        "sent_at": comment.created_at,
                        "sender": "customer" if comment.author_id == ticket.requester_id else "support",
                        "public": comment.public,
                        "body": comment.plain_body or comment.body,
                    }
                    for comment in client.tickets.comments(ticket=ticket.id)
                ]
            yield (ticket.id, ticket.subject, ticket.status, ticket.created_at, ticket.updated_at, comments)

    # --- Deletion --------------------------------------------------------------------------------

    def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
        outcome = ProcessorDeletion(self.key, subject.customer_id)
        client = self.client()
        try:
            self._delete_tickets(client, subject, ledger, outcome)
            self._delete_users(client, subject, ledger, outcome)
        except ProcessorError as error:
            return outcome.failed(error)
        ledger.erasure_complete()
        outcome.complete = True
        return outcome

    def _delete_tickets(
        self, client: Zenpy, subject: ErasureSubject, ledger: JobLedger, outcome: ProcessorDeletion
    ) -> None:
        deletions = ledger.outstanding(DELETE_TICKETS)
        purges = ledger.outstanding(PURGE_TICKETS)
        found = {int(ticket.id) for ticket in self.requested_tickets(client, subject.emails)}
        covered = {ticket_id for job in (*deletions, *purges) for ticket_id in job.target_ids}
        for chunk in batched(sorted(found - covered), BULK_IDS):
            deletions.append(ledger.add(DELETE_TICKETS, target_ids=chunk))

        from zenpy.lib.api_objects import Ticket

        def delete(ids: Sequence[int]) -> Any:
            return client.tickets.delete([Ticket(id=ticket_id) for ticket_id in ids])

        def purge(ids: Sequence[int]) -> Any:
            return client.tickets.permanently_delete([Ticket(id=ticket_id) for ticket_id in ids])

        for job in deletions:
            # Tickets search no longer finds were deleted meanwhile (by a job whose answer we
            # missed, or by an agent); they go on to the permanent deletion all the same.
            still_there = [ticket_id for ticket_id in job.target_ids if ticket_id in found]
            self._run_job(client, ledger, job, submit=delete, ids=still_there, action="delete tickets")
            ledger.completed(job)
            purges.append(ledger.add(PURGE_TICKETS, target_ids=job.target_ids))
        for job in purges:
            self._run_job(client, ledger, job, submit=purge, ids=job.target_ids, action="purge tickets")
            ledger.completed(job, log_model=TICKETS, category=CATEGORY)
            outcome.deleted.setdefault(TICKETS, []).extend(job.target_ids)

    def _delete_users(
        self, client: Zenpy, subject: ErasureSubject, ledger: JobLedger, outcome: ProcessorDeletion
    ) -> None:
        from zenpy.lib.api_objects import User

        deletions = ledger.outstanding(DELETE_USER)
        purges = ledger.outstanding(PURGE_USER)
        covered = {user_id for job in (*deletions, *purges) for user_id in job.target_ids}
        for user_id in sorted(self.end_user_ids(client, subject.emails) - covered):
            deletions.append(ledger.add(DELETE_USER, target_ids=[user_id]))
        for job in deletions:
            self._run_call(ledger, job, lambda user_id: client.users.delete(User(id=user_id)), "delete user")
            ledger.completed(job)
            purges.append(ledger.add(PURGE_USER, target_ids=job.target_ids))
        for job in purges:
            self._run_call(ledger, job, client.users.permanently_delete, "purge user")
            ledger.completed(job, log_model=USERS, category=CATEGORY)
            outcome.deleted.setdefault(USERS, []).extend(job.target_ids)

    def _run_call(
        self, ledger: JobLedger, job: ProcessorJob, call: Callable[[int], Any], action: str
    ) -> None:
        """A step Zendesk answers at once (a user's deletion). Not found: it is gone already."""
        ledger.attempted(job)
        (user_id,) = job.target_ids
        try:
            with zendesk_errors(action):
                call(user_id)
        except ProcessorError as error:
            if error.status == 404:
                return
            ledger.failed(job, error=str(error))
            raise

    def _run_job(
        self,
        client: Zenpy,
        ledger: JobLedger,
        job: ProcessorJob,
        *,
        submit: Callable[[Sequence[int]], Any],
        ids: Sequence[int],
        action: str,
    ) -> None:
        """Bring one bulk step to completion: poll the job a previous run submitted, or submit it
        and poll; raises when it fails, or is still running when our wait is over."""
        resumed = job.status == ProcessorJob.Status.SUBMITTED and job.external_id
        if resumed and self._wait(client, ledger, job) == "completed":
            return
        if not ids:
            return
        try:
            with zendesk_errors(action):
                job_status = submit(ids)
        except ProcessorError as error:
            if error.status == 404:  # nothing of it left to delete
                return
            ledger.failed(job, error=str(error))
            raise
        ledger.submitted(job, external_id=str(job_status.id))
        state = self._wait(client, ledger, job)
        if state == "gone":
            # Zendesk forgets finished jobs after a while; a job it no longer knows right after we
            # submitted it is not proof of anything, so the next run looks again.
            message = f"zendesk: {action}: job {job.external_id} unknown to Zendesk"
            ledger.failed(job, error=message)
            raise JobFailed(message)
        if state == "failed":
            message = f"zendesk: {action}: job {job.external_id} failed"
            ledger.failed(job, error=message)
            raise JobFailed(message)

    def _wait(self, client: Zenpy, ledger: JobLedger, job: ProcessorJob) -> JobState:
        """Poll the job until it completes or fails (job statuses go queued -> working ->
        completed | failed | killed)."""
        deadline = time.monotonic() + self.job_wait
        while True:
            try:
                with zendesk_errors("poll job"):
                    status = client.job_status(id=job.external_id)
            except ProcessorError as error:
                if error.status == 404:
                    return "gone"
                ledger.failed(job, error=str(error), keep_submitted=True)
                raise
            if status.status == "completed":
                return "completed"
            if status.status in ("failed", "killed"):
                return "failed"
            if time.monotonic() >= deadline:
                message = f"zendesk: job {job.external_id} still {status.status} after {self.job_wait} s"
                ledger.failed(job, error=message, keep_submitted=True)
                raise JobStillRunning(message)
            self.sleep(self.poll_every)

    # --- Settings --------------------------------------------------------------------------------

    def check_settings(self) -> list[Drift]:
        """Deleting tickets and users needs an admin's token; an agent's would fail at the purge."""
        with zendesk_errors("read the API user"):
            me = self.client().users.me()
        role = str(getattr(me, "role", "") or "")
        if role == "admin":
            return []
        return [
            Drift(
                processor=self.key,
                setting=str(_("Role of the API token's user")),
                expected="admin",
                actual=role or "?",
                fix=str(
                    _(
                        "Deleting tickets and end users needs an administrator: give the agent "
                        "ZENDESK_EMAIL names the admin role in Zendesk, or use an admin's API token."
                    )
                ),
            )
        ]
