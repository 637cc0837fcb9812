"""Local stand-ins for the processors' APIs, spoken to by the real client libraries.

Each fake is a `ThreadingHTTPServer` on 127.0.0.1 (a free port), started and stopped by the tests'
fixtures, implementing the endpoints the connectors use as the processor documents them: paging,
errors, rate limits (429 with Retry-After) and asynchronous jobs. Nothing here reaches the internet.

- `FakeZendesk`: search export (cursor-paged), ticket comments (cursor-paged), users search, the
  API user, bulk ticket deletion and permanent deletion (job statuses queued -> working ->
  completed / failed), user deletion and permanent deletion. It answers as
  https://<subdomain>.zendesk.com (its `links.next` say so); the connector's routing adapter
  brings zenpy's requests here.
- `FakeGoogle`: the OAuth token endpoint a service account signs in at, the Admin API's data
  retention settings, and the User Deletion API.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

SUBDOMAIN = "wphosting-test"
AGENT_EMAIL = "api-agent@wphosting.example"
API_TOKEN = "zendesk-test-token"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


class FakeServer:
    """A threaded HTTP server whose handler calls `self.handle(method, path, query, headers, body)`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        # The next this-many requests are answered 429 with Retry-After: `retry_after` seconds.
        self.rate_limit_next = 0
        self.retry_after = 1
        self.rate_limit_path = r".*"  # which requests the rate limit applies to
        # Every request is answered 503 while down.
        self.down = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes; without this, Nagle's algorithm and the
                # client's delayed ACK hold every keep-alive answer back ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                status, headers, payload = fake.dispatch(self.command, parts.path, query, self.headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the paths carry e-mail addresses; the suite's logs must not

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if self.down:
                answer: tuple[int, dict[str, str], Any] = (
                    503,
                    {},
                    self.error_body(503, "ServiceUnavailable"),
                )
            elif self.rate_limit_next > 0 and re.fullmatch(self.rate_limit_path, path):
                self.rate_limit_next -= 1
                answer = (
                    429,
                    {"Retry-After": str(self.retry_after)},
                    self.error_body(429, "TooManyRequests"),
                )
            else:
                answer = self.handle(method, path, query, headers, body)
            self.requests.append(Recorded(method, path, query, answer[0]))
            return answer

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def error_body(self, status: int, name: str) -> Any:
        """An error answer's body in the processor's own format (Zendesk's here)."""
        return {"error": name}

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]


def _not_found() -> tuple[int, dict[str, str], Any]:
    return 404, {}, {"error": "RecordNotFound", "description": "Not found"}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ZendeskJob:
    id: str
    kind: str  # "tickets.delete" | "tickets.purge"
    ids: list[int]
    states: list[str]  # what the next polls answer, in order; the last one stays
    applied: bool = False


@dataclass
class FakeTicket:
    id: int
    subject: str
    requester_id: int
    status: str = "closed"
    comments: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False


class FakeZendesk(FakeServer):
    def __init__(self, *, subdomain: str = SUBDOMAIN) -> None:
        super().__init__()
        self.public_url = f"https://{subdomain}.zendesk.com"
        self.tickets: dict[int, FakeTicket] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.deleted_users: dict[int, dict[str, Any]] = {}
        self.jobs: dict[str, ZendeskJob] = {}
        # Job kinds whose next job ends in "failed"; "tickets.delete" or "tickets.purge".
        self.fail_next_job: set[str] = set()
        # How many polls it takes until a job answers that it ended (queued, working..., ended).
        self.job_polls = 3
        self.me_role = "admin"
        self._ids = itertools.count(10_000)
        self._job_ids = itertools.count(1)
        self.created = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    # --- Arranging ---------------------------------------------------------------------------------

    def add_user(self, email: str, *, role: str = "end-user", name: str = "Someone") -> int:
        with self.lock:
            user_id = next(self._ids)
            self.users[user_id] = {"id": user_id, "email": email, "role": role, "name": name, "active": True}
            return user_id

    def add_tickets(self, requester_id: int, count: int, *, comments: int = 1) -> list[int]:
        with self.lock:
            ids = []
            for number in range(count):
                ticket_id = next(self._ids)
                ticket = FakeTicket(ticket_id, f"Spørsmål {number + 1} om nettsiden", requester_id)
                for position in range(comments):
                    author = requester_id if position % 2 == 0 else 1
                    ticket.comments.append(
                        {
                            "id": ticket_id * 100 + position,
                            "type": "Comment",
                            "author_id": author,
                            "body": f"Melding {position + 1} i sak {ticket_id}",
                            "plain_body": f"Melding {position + 1} i sak {ticket_id}",
                            "public": True,
                            "created_at": _stamp(self.created + timedelta(hours=position)),
                        }
                    )
                self.tickets[ticket_id] = ticket
                ids.append(ticket_id)
            return ids

    def live_tickets(self) -> set[int]:
        with self.lock:
            return {ticket.id for ticket in self.tickets.values() if not ticket.deleted}

    def soft_deleted_tickets(self) -> set[int]:
        with self.lock:
            return {ticket.id for ticket in self.tickets.values() if ticket.deleted}

    # --- Serving -----------------------------------------------------------------------------------

    def _authorised(self, headers: Any) -> bool:
        expected = base64.b64encode(f"{AGENT_EMAIL}/token:{API_TOKEN}".encode()).decode()
        return headers.get("Authorization") == f"Basic {expected}"

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if not self._authorised(headers):
            return 401, {}, {"error": "Couldn't authenticate you"}
        routes: list[tuple[str, str, Callable[..., tuple[int, dict[str, str], Any]]]] = [
            ("GET", r"/api/v2/search/export\.json", self._search_export),
            ("GET", r"/api/v2/tickets/(\d+)/comments\.json", self._comments),
            ("GET", r"/api/v2/users/search\.json", self._users_search),
            ("GET", r"/api/v2/users/me\.json", self._me),
            ("DELETE", r"/api/v2/tickets/destroy_many\.json", self._destroy_tickets),
            ("DELETE", r"/api/v2/deleted_tickets/destroy_many(?:\.json)?", self._purge_tickets),
            ("GET", r"/api/v2/job_statuses/(\w+)\.json", self._job_status),
            ("DELETE", r"/api/v2/users/(\d+)\.json", self._delete_user),
            ("DELETE", r"/api/v2/deleted_users/(\d+)\.json", self._purge_user),
        ]
        for route_method, pattern, view in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return view(query, *match.groups())
        return _not_found()

    def _page(
        self, items: list[dict[str, Any]], query: dict[str, list[str]], *, key: str, path: str, limit: int
    ) -> dict[str, Any]:
        size = min(int(query.get("page[size]", ["100"])[0]), limit)
        after = query.get("page[after]", [""])[0]
        start = int(base64.urlsafe_b64decode(after).decode()) if after else 0
        chunk = items[start : start + size]
        has_more = start + size < len(items)
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode() if has_more else None
        following = None
        if has_more:
            params = {name: values[0] for name, values in query.items() if name != "page[after]"}
            following = f"{self.public_url}{path}?{urlencode({**params, 'page[after]': cursor})}"
        return {
            key: chunk,
            "meta": {"has_more": has_more, "after_cursor": cursor, "before_cursor": None},
            "links": {"next": following, "prev": None},
        }

    def _ticket_json(self, ticket: FakeTicket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "url": f"{self.public_url}/api/v2/tickets/{ticket.id}.json",
            "subject": ticket.subject,
            "status": ticket.status,
            "requester_id": ticket.requester_id,
            "created_at": _stamp(self.created),
            "updated_at": _stamp(self.created + timedelta(days=1)),
        }

    def _search_export(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        if query.get("filter[type]") != ["ticket"]:
            return 400, {}, {"error": "InvalidFilter", "description": "filter[type] is required"}
        terms = query.get("query", [""])[0].split()
        requesters = {
            term.split(":", 1)[1].strip('"').lower() for term in terms if term.startswith("requester:")
        }
        user_ids = {user["id"] for user in self.users.values() if user["email"].lower() in requesters}
        found = [
            {**self._ticket_json(ticket), "result_type": "ticket"}
            for ticket in sorted(self.tickets.values(), key=lambda t: t.id)
            if ticket.requester_id in user_ids and not ticket.deleted
        ]
        page = self._page(found, query, key="results", path="/api/v2/search/export.json", limit=1000)
        return 200, {}, {**page, "facets": None}

    def _comments(self, query: dict[str, list[str]], ticket_id: str) -> tuple[int, dict[str, str], Any]:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None or ticket.deleted:
            return _not_found()
        path = f"/api/v2/tickets/{ticket_id}/comments.json"
        return 200, {}, self._page(ticket.comments, query, key="comments", path=path, limit=100)

    def _users_search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        wanted = query.get("query", [""])[0].lower()
        users = [user for user in self.users.values() if user["email"].lower() == wanted]
        return 200, {}, {"users": users, "next_page": None, "previous_page": None, "count": len(users)}

    def _me(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"user": {"id": 1, "email": AGENT_EMAIL, "role": self.me_role, "name": "API"}}

    def _new_job(self, kind: str, ids: list[int]) -> tuple[int, dict[str, str], Any]:
        job_id = f"job{next(self._job_ids):04d}"
        ending = "failed" if kind in self.fail_next_job else "completed"
        self.fail_next_job.discard(kind)
        # Submitted as "queued"; then `job_polls` polls, the last of which answers how it ended.
        states = ["queued"] + ["working"] * max(self.job_polls - 2, 0) + [ending]
        states = states[-self.job_polls :] if self.job_polls > 0 else [ending]
        self.jobs[job_id] = ZendeskJob(job_id, kind, ids, states)
        return 200, {}, {"job_status": self._job_json(self.jobs[job_id], "queued")}

    def _job_json(self, job: ZendeskJob, status: str) -> dict[str, Any]:
        done = status in ("completed", "failed")
        return {
            "id": job.id,
            "url": f"{self.public_url}/api/v2/job_statuses/{job.id}.json",
            "status": status,
            "total": len(job.ids),
            "progress": len(job.ids) if done else 0,
            "message": "Completed" if status == "completed" else None,
            "results": [{"id": i, "success": status == "completed", "action": "delete"} for i in job.ids]
            if done
            else None,
        }

    def _ids_of(self, query: dict[str, list[str]]) -> list[int]:
        return [int(value) for value in query.get("ids", [""])[0].split(",") if value]

    def _destroy_tickets(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        ids = self._ids_of(query)
        if not ids or len(ids) > 100:
            return 400, {}, {"error": "InvalidValue", "description": "1 to 100 ids"}
        if not any(i in self.tickets and not self.tickets[i].deleted for i in ids):
            return _not_found()
        return self._new_job("tickets.delete", ids)

    def _purge_tickets(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        ids = self._ids_of(query)
        if not ids or len(ids) > 100:
            return 400, {}, {"error": "InvalidValue", "description": "1 to 100 ids"}
        if not any(i in self.tickets and self.tickets[i].deleted for i in ids):
            return _not_found()
        return self._new_job("tickets.purge", ids)

    def _job_status(self, query: dict[str, list[str]], job_id: str) -> tuple[int, dict[str, str], Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return _not_found()
        status = job.states.pop(0) if len(job.states) > 1 else job.states[0]
        if status == "completed" and not job.applied:
            job.applied = True
            for ticket_id in job.ids:
                ticket = self.tickets.get(ticket_id)
                if ticket is None:
                    continue
                if job.kind == "tickets.delete":
                    ticket.deleted = True
                elif ticket.deleted:
                    del self.tickets[ticket_id]
        return 200, {}, {"job_status": self._job_json(job, status)}

    def _delete_user(self, query: dict[str, list[str]], user_id: str) -> tuple[int, dict[str, str], Any]:
        user = self.users.pop(int(user_id), None)
        if user is None:
            return _not_found()
        user = {**user, "active": False}
        self.deleted_users[user["id"]] = user
        return 200, {}, {"user": user}

    def _purge_user(self, query: dict[str, list[str]], user_id: str) -> tuple[int, dict[str, str], Any]:
        user = self.deleted_users.pop(int(user_id), None)
        if user is None:
            return _not_found()
        return (
            200,
            {},
            {"deleted_user": {"id": user["id"], "name": "Permanently deleted user", "active": False}},
        )


# --- Google ------------------------------------------------------------------------------------------

RETENTION_ENUM = {
    "RETENTION_DURATION_UNSPECIFIED": 0,
    "TWO_MONTHS": 1,
    "FOURTEEN_MONTHS": 3,
    "TWENTY_SIX_MONTHS": 4,
    "THIRTY_EIGHT_MONTHS": 5,
    "FIFTY_MONTHS": 6,
}
ACCESS_TOKEN = "fake-google-access-token"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
UNAUTHENTICATED: tuple[int, dict[str, str], Any] = (
    401,
    {},
    {"error": {"code": 401, "message": "Request had invalid credentials.", "status": "UNAUTHENTICATED"}},
)


class FakeGoogle(FakeServer):
    """The token endpoint, the Admin API's data retention settings and the User Deletion API."""

    def __init__(self, *, property_id: str = "123456789") -> None:
        super().__init__()
        self.property_id = property_id
        self.event_data_retention = "FOURTEEN_MONTHS"
        self.user_data_retention = "FOURTEEN_MONTHS"
        self.reset_user_data_on_new_activity = False
        self.deletion_requests: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.self_signed_jwts = 0
        self.service_account_email = "portal-tests@portal-test.iam.gserviceaccount.com"
        self.public_key: Any = None

    def service_account_file(self, path: Any) -> str:
        """A service account key file whose token endpoint is this fake's. google-auth signs in with
        it as at Google: a JWT signed with the key, traded for an access token at the token endpoint
        (AuthorizedSession), or sent itself as a self-signed JWT (the Admin API client)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "portal-test",
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": self.service_account_email,
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(info), encoding="utf-8")
        return str(path)

    def _signed_by_the_service_account(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT the service account's key signed, or None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def decode(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            header, claims, signature = token.split(".")
            self.public_key.verify(
                decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            payload: dict[str, Any] = json.loads(decode(claims))
        except (ValueError, InvalidSignature, AttributeError):
            return None
        if payload.get("iss") != self.service_account_email or payload.get("exp", 0) < time.time():
            return None
        return payload

    def _authorised(self, headers: Any, *, scope: str) -> bool:
        authorization = headers.get("Authorization") or ""
        if authorization == f"Bearer {ACCESS_TOKEN}":
            return True
        claims = self._signed_by_the_service_account(authorization.removeprefix("Bearer "))
        if claims is None or scope not in str(claims.get("scope", "")).split():
            return False
        self.self_signed_jwts += 1
        return True

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and path == "/token":
            return self._token(body)
        match = re.fullmatch(r"/v1beta/properties/(\w+)/dataRetentionSettings", path)
        if method == "GET" and match:
            if not self._authorised(headers, scope=f"{SCOPE_PREFIX}analytics.readonly"):
                return UNAUTHENTICATED
            return self._retention(match.group(1), query)
        if method == "POST" and path == "/analytics/v3/userDeletion/userDeletionRequests:upsert":
            if not self._authorised(headers, scope=f"{SCOPE_PREFIX}analytics.user.deletion"):
                return UNAUTHENTICATED
            return self._user_deletion(json.loads(body or b"{}"))
        return 404, {}, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}

    def error_body(self, status: int, name: str) -> Any:
        statuses = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
        return {"error": {"code": status, "message": name, "status": statuses.get(status, "UNKNOWN")}}

    def _token(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or not form.get(
            "assertion"
        ):
            return 400, {}, {"error": "invalid_grant"}
        self.tokens_issued += 1
        return 200, {}, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    def _retention(self, property_id: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        if property_id != self.property_id:
            return 404, {}, {"error": {"code": 404, "message": "Property not found", "status": "NOT_FOUND"}}
        as_int = "enum-encoding=int" in query.get("$alt", [""])[0]

        def encode(name: str) -> Any:
            return RETENTION_ENUM[name] if as_int else name

        return (
            200,
            {},
            {
                "name": f"properties/{property_id}/dataRetentionSettings",
                "eventDataRetention": encode(self.event_data_retention),
                "userDataRetention": encode(self.user_data_retention),
                "resetUserDataOnNewActivity": self.reset_user_data_on_new_activity,
            },
        )

    def _user_deletion(self, request: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        identifier = request.get("id") or {}
        if identifier.get("type") != "CLIENT_ID" or not identifier.get("userId"):
            return 400, {}, {"error": {"code": 400, "message": "Invalid id", "status": "INVALID_ARGUMENT"}}
        if request.get("propertyId") != self.property_id:
            return (
                403,
                {},
                {"error": {"code": 403, "message": "No access to property", "status": "PERMISSION_DENIED"}},
            )
        self.deletion_requests.append(request)
        return 200, {}, {**request, "deletionRequestTime": _stamp(datetime.now(UTC))}


@dataclass
class FakeMessage:
    id: str
    sender: str
    to: str
    cc: str
    subject: str
    text: str
    sent_at: datetime
    labels: tuple[str, ...] = ("INBOX",)

    def addresses(self) -> set[str]:
        found: set[str] = set()
        for value in (self.sender, self.to, self.cc):
            found.update(match.lower() for match in re.findall(r"[\w.+-]+@[\w.-]+", value))
        return found


GMAIL_SCOPE = "https://mail.google.com/"
GMAIL_QUERY = re.compile(r"\{from:(\S+) to:\1 cc:\1 bcc:\1\}")


class FakeWorkspace(FakeGoogle):
    """Google's token endpoint with domain-wide delegation (the JWT's `sub` is the mailbox signed
    in as; a mailbox not in `delegated` is refused as Google refuses it, 401 unauthorized_client),
    and the Gmail API endpoints the connector uses: users.getProfile, users.messages.list (paged,
    with Gmail's `{from:a to:a cc:a bcc:a}` search), users.messages.get (format=full) and
    users.messages.batchDelete. `userId` "me" is the mailbox the access token was issued for."""

    def __init__(
        self, mailboxes: tuple[str, ...] = ("support@wphosting.example", "faktura@wphosting.example")
    ) -> None:
        super().__init__()
        self.mailboxes: dict[str, dict[str, FakeMessage]] = {mailbox: {} for mailbox in mailboxes}
        self.delegated = set(mailboxes)
        self.tokens: dict[str, str] = {}
        self.deleted: dict[str, list[str]] = {mailbox: [] for mailbox in mailboxes}
        self.numbers = itertools.count(0x18C0_0000_0000_0000)
        # Answer batchDelete 503 this many times (an outage half-way through a deletion).
        self.fail_deletes = 0

    def add_message(
        self,
        mailbox: str,
        *,
        sender: str,
        to: str,
        cc: str = "",
        subject: str = "Hei",
        text: str = "Tekst",
        sent_at: datetime | None = None,
        message_id: str | None = None,
    ) -> str:
        with self.lock:
            identifier = message_id or format(next(self.numbers), "x")
            self.mailboxes[mailbox][identifier] = FakeMessage(
                identifier, sender, to, cc, subject, text, sent_at or datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
            )
            return identifier

    def held(self, mailbox: str) -> set[str]:
        with self.lock:
            return set(self.mailboxes[mailbox])

    def _token(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        form = parse_qs(body.decode())
        claims = self._signed_by_the_service_account((form.get("assertion") or [""])[0])
        if claims is None:
            return 400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject = str(claims.get("sub", "")).lower()
        if subject not in self.delegated or GMAIL_SCOPE not in str(claims.get("scope", "")).split():
            return (
                401,
                {},
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens using this "
                    "method, or client not authorized for any of the scopes requested.",
                },
            )
        self.tokens_issued += 1
        token = f"workspace-token-{self.tokens_issued}"
        self.tokens[token] = subject
        return 200, {}, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and path == "/token":
            return self._token(body)
        match = re.fullmatch(
            r"/gmail/v1/users/([^/]+)/(profile|messages|messages/batchDelete|messages/(\w+))", path
        )
        if match is None:
            return 404, {}, self.error_body(404, "Not found")
        mailbox = self.tokens.get((headers.get("Authorization") or "").removeprefix("Bearer "))
        if mailbox is None:
            return UNAUTHENTICATED
        if match.group(1) not in ("me", mailbox):
            return 403, {}, self.error_body(403, "Delegation denied")
        messages = self.mailboxes[mailbox]
        what = match.group(2)
        if what == "profile" and method == "GET":
            return 200, {}, {"emailAddress": mailbox, "messagesTotal": len(messages), "historyId": "1"}
        if what == "messages" and method == "GET":
            return self._list(messages, query)
        if what == "messages/batchDelete" and method == "POST":
            if self.fail_deletes > 0:
                self.fail_deletes -= 1
                return 503, {}, self.error_body(503, "Backend Error")
            ids = json.loads(body or b"{}").get("ids") or []
            if not ids or len(ids) > 1000:
                return 400, {}, self.error_body(400, "Invalid ids")
            for identifier in ids:
                if messages.pop(identifier, None) is not None:
                    self.deleted[mailbox].append(identifier)
            return 204, {}, None
        if match.group(3) and method == "GET":
            message = messages.get(match.group(3))
            if message is None:
                return 404, {}, self.error_body(404, "Requested entity was not found.")
            return 200, {}, self._message_json(message)
        return 404, {}, self.error_body(404, "Not found")

    def _list(
        self, messages: dict[str, FakeMessage], query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], Any]:
        search = GMAIL_QUERY.fullmatch((query.get("q") or [""])[0])
        if search is None:
            return 400, {}, self.error_body(400, "Invalid query")
        address = search.group(1).lower()
        found = sorted(
            (message for message in messages.values() if address in message.addresses()),
            key=lambda message: message.sent_at,
            reverse=True,
        )
        size = min(int((query.get("maxResults") or ["100"])[0]), 500)
        start = int((query.get("pageToken") or ["0"])[0])
        page = found[start : start + size]
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if page:
            answer["messages"] = [{"id": message.id, "threadId": message.id} for message in page]
        if start + size < len(found):
            answer["nextPageToken"] = str(start + size)
        return 200, {}, answer

    def _message_json(self, message: FakeMessage) -> dict[str, Any]:
        def data(text: str) -> str:
            return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

        headers = [
            {"name": "From", "value": message.sender},
            {"name": "To", "value": message.to},
            {"name": "Subject", "value": message.subject},
            {"name": "Date", "value": message.sent_at.strftime("%a, %d %b %Y %H:%M:%S +0000")},
        ]
        if message.cc:
            headers.append({"name": "Cc", "value": message.cc})
        return {
            "id": message.id,
            "threadId": message.id,
            "labelIds": list(message.labels),
            "internalDate": str(int(message.sent_at.timestamp() * 1000)),
            "payload": {
                "mimeType": "multipart/alternative",
                "headers": headers,
                "parts": [
                    {"mimeType": "text/plain", "body": {"data": data(message.text)}},
                    {"mimeType": "text/html", "body": {"data": data(f"<p>{message.text}</p>")}},
                ],
            },
        }
