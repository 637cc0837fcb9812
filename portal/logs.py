"""Structured logs without personal data, each line carrying the request it belongs to.

Invariants:
- Each web request writes one `request` line (`RequestIdMiddleware`): method, path, query string,
  status, duration, user id, request id and the client's address as the trusted proxy gives it
  (the address allauth's rate limits key on). It is the only request log: gunicorn's access log is
  off (Dockerfile, docker-compose.yml) and the development server's is silenced (settings.LOGGING).
- The query string and path of that line are scrubbed where they are read (`scrub_query_string`,
  `scrub_path`): a value holding an e-mail address however often it was percent-encoded, a free-text
  search (a name, most often) and a value whose name says it is a secret (a code, a token, a key,
  a signature) are replaced before the line is logged.
- Every line is one JSON object (structlog's `ProcessorFormatter` over the standard library's
  logging, so Django's, Celery's and the apps' `logging.getLogger` lines look the same as
  structlog's), with `request_id`: the web request's, or the one the task was queued from.
- Nothing here logs an e-mail address, a name or a token. Sign-in failures carry a keyed hash of
  the address typed (`login_hash`), enough to see that one address is being guessed at, useless
  for finding out which. `scrub_personal_data` masks e-mail addresses and secrets in every line as
  a last line of defence; it is not what keeps the logs clean: the test suite fails on any log
  record that holds an e-mail address before the scrubber sees it (tests/conftest.py).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import Token
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import structlog
from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.handlers.wsgi import get_str_from_wsgi
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

REQUEST_ID_HEADER = "X-Request-ID"
# A request id from the proxy is kept only when it cannot smuggle anything into a log line.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
# Celery message header carrying the request id from the web process to the worker.
TASK_HEADER = "request_id"

# The at sign also percent-encoded once or more (%40, %2540, ...), as a URL carries it, and as the
# full-width and small at signs.
EMAIL_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+(?:[@\uff20\ufe6b]|%(?:25)*40)[A-Za-z0-9-]+(?:(?:\.|%(?:25)*2[Ee])[A-Za-z0-9-]+)+",
    re.IGNORECASE,
)
# `name=value` or `name: value` where the name says it is a secret (query strings of presigned URLs,
# sign-in codes, session keys, authorisation headers).
SECRET_VALUE = re.compile(
    r"(?i)\b((?:[\w-]*(?:token|secret|password|passwd|signature|credential|sessionid|session_key|"
    r"csrftoken|api[_-]?key|code)|authorization|x-amz-[\w-]+)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?:bearer\s+)?[^\s&\"',;}]+"
)

logger = structlog.get_logger("portal.security")
request_logger = structlog.get_logger("portal.request")

# Query parameters holding what someone typed to find a person (the admin's and the autocomplete's
# search): a name as often as not, so never logged.
FREE_TEXT_PARAMETERS = frozenset({"q", "term", "search"})
# Parameter (and URL path parameter) names that say their value is a secret.
SECRET_NAME = re.compile(
    r"(?i)token|secret|password|passwd|signature|credential|session|csrf|api[_-]?key|^key$|_key$|"
    r"code|otp|^x-amz-"
)
# "@" as typed, and the full-width and small at signs a careless decoder turns into it.
AT_SIGNS = ("@", "\uff20", "\ufe6b")
# A value encoded more often than this is not left readable: it is refused whole.
DECODING_ROUNDS = 5
LOGGED_QUERY_CHARACTERS = 1000
# How deep a URL in a parameter (in a parameter ...) has its own query string scrubbed.
NESTED_QUERIES = 2


# --- Formatting --------------------------------------------------------------------------------


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET_VALUE.sub(r"\1[redacted]", EMAIL_ADDRESS.sub("[e-mail]", value))
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def scrub_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: mask e-mail addresses and secrets in every value of the line."""
    return {key: _scrub(value) for key, value in event_dict.items()}


def add_request_id_of_record(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Django logs a failed request's status ("Not Found: /x") after the middleware has returned;
    the record carries the request, and so its id."""
    request = getattr(event_dict.get("_record"), "request", None)
    request_id = getattr(request, "request_id", None)
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


SHARED_PROCESSORS: list[Callable[..., Any]] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(renderer: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The `logging` formatter of settings.LOGGING: JSON lines, or readable lines for a terminal."""
    final: Callable[..., Any] = (
        structlog.dev.ConsoleRenderer(colors=False)
        if renderer == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, add_request_id_of_record],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            scrub_personal_data,
            final,
        ],
    )


def configure_structlog() -> None:
    """structlog's loggers hand their events to `logging`, so one handler and formatter serve all."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- The request line ----------------------------------------------------------------------------


def _fully_decoded(text: str) -> str | None:
    """`text` percent-decoded until nothing changes (a %2540 is an @ twice over); None when it
    still changes after DECODING_ROUNDS."""
    for _round in range(DECODING_ROUNDS):
        decoded = unquote_plus(text)
        if decoded == text:
            return text
        text = decoded
    return None


def _scrubbed_parameter(name: str, value: str, *, nesting: int) -> tuple[str, str]:
    decoded_name, decoded_value = _fully_decoded(name), _fully_decoded(value)
    if decoded_name is None or any(sign in decoded_name for sign in AT_SIGNS):
        return "[e-mail]", "[e-mail]"
    if decoded_value is None or any(sign in decoded_value for sign in AT_SIGNS):
        return name, "[e-mail]"
    if SECRET_NAME.search(decoded_name):
        return name, "[redacted]"
    if decoded_name.lower() in FREE_TEXT_PARAMETERS and value:
        return name, "[search]"
    if "?" in decoded_value and nesting < NESTED_QUERIES:
        # A URL to go on to (`next=/my-data/?code=...`) carries a query string of its own.
        base, _, query = decoded_value.partition("?")
        return name, f"{base}?{_scrubbed_query(query, nesting=nesting + 1)}"
    return name, value


def _scrubbed_query(query: str, *, nesting: int) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([_scrubbed_parameter(name, value, nesting=nesting) for name, value in pairs], safe="[]")


def scrub_query_string(query: str) -> str:
    """The query string as it may be logged: see the module's invariants."""
    scrubbed = _scrubbed_query(query, nesting=0)
    if len(scrubbed) > LOGGED_QUERY_CHARACTERS:
        return scrubbed[:LOGGED_QUERY_CHARACTERS] + "[...]"
    return scrubbed


def scrub_path(request: HttpRequest) -> str:
    """The path with the URL's secret parameters (a password-reset or confirmation key) and any
    e-mail address taken out."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    kwargs = match.kwargs if match is not None else {}
    secrets = [value for name, value in kwargs.items() if SECRET_NAME.search(name) and isinstance(value, str)]
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            path = path.replace(secret, "[redacted]")
    return EMAIL_ADDRESS.sub("[e-mail]", path)


def client_address(request: HttpRequest) -> str | None:
    """The client's address as allauth's rate limits see it: the trusted proxy's X-Forwarded-For
    entry behind BEHIND_TLS_PROXY, otherwise the connection's."""
    # Imported here: settings.LOGGING loads this module before the apps are ready.
    from allauth.account.adapter import get_adapter
    from django.core.exceptions import ImproperlyConfigured, PermissionDenied

    try:
        return str(get_adapter(request).get_client_ip(request))
    except (ImproperlyConfigured, PermissionDenied):
        return None


def log_request(request: HttpRequest, response: HttpResponse, *, duration: float) -> None:
    user = getattr(request, "user", None)
    # As Django reads it: WSGI hands over the raw bytes as latin-1, a typed "＠" among them.
    query = get_str_from_wsgi(request.META, "QUERY_STRING", "")
    request_logger.info(
        "request",
        method=request.method,
        path=scrub_path(request),
        query=scrub_query_string(query) if query else None,
        status=response.status_code,
        duration_ms=round(duration * 1000, 1),
        user_id=user.pk if user is not None and user.is_authenticated else None,
        client=client_address(request),
    )


# --- Request ids -------------------------------------------------------------------------------


def current_request_id() -> str | None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return str(request_id) if request_id else None


class RequestIdMiddleware:
    """Gives each request an id (the proxy's X-Request-ID when it looks safe), binds it to every log
    line written while the request runs, returns it in the response, logs refusals, and writes the
    request's one `request` line (the portal's access log)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # A worker thread serves many requests: nothing bound by an earlier one may leak into this.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            if response.status_code in (401, 403, 429):
                user = getattr(request, "user", None)
                logger.warning(
                    "request_refused",
                    status=response.status_code,
                    method=request.method,
                    path=scrub_path(request),
                    user_id=user.pk if user is not None and user.is_authenticated else None,
                )
            # Until the response is handed to the server: a streamed file's sending is not counted.
            log_request(request, response, duration=time.perf_counter() - started)
        finally:
            structlog.contextvars.clear_contextvars()
        response[REQUEST_ID_HEADER] = request_id
        return response


# --- Celery: the request id travels with the task ----------------------------------------------

_task_tokens: dict[str, Mapping[str, Token[Any]]] = {}


@before_task_publish.connect
def _add_request_id_to_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    request_id = (
        getattr(request, TASK_HEADER, None)
        or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
        # A task run eagerly runs inside the request that called it.
        or current_request_id()
        or f"task-{task_id}"
    )
    _task_tokens[task_id] = structlog.contextvars.bind_contextvars(
        request_id=request_id, task_id=task_id, task=task.name
    )


@task_postrun.connect
def _unbind_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens is not None:
        # Back to what was bound before: an eager task leaves its calling request's context intact.
        structlog.contextvars.reset_contextvars(**tokens)


# --- Security events ---------------------------------------------------------------------------


def login_hash(login: str) -> str:
    """A stable pseudonym of an address typed at sign-in: the same address always gives the same
    value (so repeated guessing shows), and without the secret key it leads back to nobody."""
    return salted_hmac("portal.logs.login_hash", login.strip().lower(), algorithm="sha256").hexdigest()[:16]


def sign_in_failed(*, method: str, login: str = "", user_id: int | None = None) -> None:
    logger.warning(
        "sign_in_failed", method=method, login_hash=login_hash(login) if login else None, user_id=user_id
    )


def sign_in_refused(*, reason: str, user_id: int | None = None) -> None:
    logger.warning("sign_in_refused", reason=reason, user_id=user_id)


def on_user_login_failed(
    sender: Any, credentials: Mapping[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """django.contrib.auth's `user_login_failed`: every failed password check, whichever form."""
    login = str(credentials.get("email") or credentials.get("username") or credentials.get("login") or "")
    sign_in_failed(method="password", login=login)


def on_second_factor_failed(sender: Any, user: Any = None, **kwargs: Any) -> None:
    """allauth.mfa's `authentication_failed`: a wrong authenticator-app or recovery code."""
    sign_in_failed(method="second_factor", user_id=getattr(user, "pk", None))
