"""Structured logs without personal data, each line carrying the request it belongs to.

Invariants:
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
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import Token
from typing import Any

import structlog
from celery.signals import before_task_publish, task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

REQUEST_ID_HEADER = "X-Request-ID"
# A request id from the proxy is kept only when it cannot smuggle anything into a log line.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
# Celery message header carrying the request id from the web process to the worker.
TASK_HEADER = "request_id"

EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# `name=value` or `name: value` where the name says it is a secret (query strings of presigned URLs,
# sign-in codes, session keys, authorisation headers).
SECRET_VALUE = re.compile(
    r"(?i)\b((?:[\w-]*(?:token|secret|password|passwd|signature|credential|sessionid|session_key|"
    r"csrftoken|api[_-]?key|code)|authorization|x-amz-[\w-]+)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?:bearer\s+)?[^\s&\"',;}]+"
)

logger = structlog.get_logger("portal.security")


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


# --- Request ids -------------------------------------------------------------------------------


def current_request_id() -> str | None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return str(request_id) if request_id else None


class RequestIdMiddleware:
    """Gives each request an id (the proxy's X-Request-ID when it looks safe), binds it to every log
    line written while the request runs, returns it in the response, and logs refusals."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # A worker thread serves many requests: nothing bound by an earlier one may leak into this.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            if response.status_code in (401, 403, 429):
                user = getattr(request, "user", None)
                logger.warning(
                    "request_refused",
                    status=response.status_code,
                    method=request.method,
                    path=request.path,
                    user_id=user.pk if user is not None and user.is_authenticated else None,
                )
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
