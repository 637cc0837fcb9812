"""Logs are JSON lines with the request id (carried into Celery tasks), record sign-in failures and
refusals, and hold no e-mail address, name or token."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import structlog
from django.test import Client, RequestFactory
from django.urls import ResolverMatch, reverse

from portal import logs
from tests.conftest import EMAIL_IN_LOG, SuiteLogCapture, lines_with_email
from tests.security.celery_tasks import log_from_a_task

pytestmark = pytest.mark.django_db

PASSWORD = "korrekt-hest-batteri-stift"
BASE_DIR = Path(__file__).resolve().parents[2]


class JsonLines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([json.loads(line) for line in self.stream.getvalue().splitlines() if line])

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self if line.get("event") == name]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    """What the production handler writes: the portal's JSON formatter on the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield JsonLines(stream)
    finally:
        root.removeHandler(handler)


def test_every_line_of_a_request_carries_its_request_id(client: Client, json_logs: JsonLines) -> None:
    response = client.get("/no-such-page/", headers={"X-Request-ID": "edge-7f3a9c21"})
    assert response["X-Request-ID"] == "edge-7f3a9c21"
    lines = list(json_logs)
    assert lines, "a 404 logs a warning"
    assert all(line["request_id"] == "edge-7f3a9c21" for line in lines)
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert not_found["level"] == "warning" and "timestamp" in not_found


def test_the_request_id_goes_with_a_task_run_eagerly(json_logs: JsonLines) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-eager-0001")
    try:
        log_from_a_task.apply()
    finally:
        structlog.contextvars.clear_contextvars()
    ran = json_logs.events("task_ran")
    assert ran and ran[0]["request_id"] == "req-eager-0001"
    assert ran[0]["task"] == "tests.security.log_from_a_task"
    plain = json_logs.events("plain logging in a task")
    assert plain and plain[0]["request_id"] == "req-eager-0001"


def test_the_request_id_travels_in_the_task_message_to_a_worker(json_logs: JsonLines) -> None:
    # Publishing adds the header (before_task_publish) ...
    headers: dict[str, Any] = {}
    structlog.contextvars.bind_contextvars(request_id="req-queued-0002")
    try:
        logs._add_request_id_to_task(headers=headers)
    finally:
        structlog.contextvars.clear_contextvars()
    assert headers == {"request_id": "req-queued-0002"}
    # ... and the worker, with nothing bound, binds it from the message while the task runs.
    log_from_a_task.apply(headers=headers)
    ran = json_logs.events("task_ran")
    assert ran and ran[0]["request_id"] == "req-queued-0002"
    assert structlog.contextvars.get_contextvars() == {}


def test_a_worker_logs_with_the_request_id_of_the_request_that_queued_the_task() -> None:
    """End to end: a real worker process, the real broker (Redis), a queue of this test's own."""
    queue = f"security-test-{uuid.uuid4().hex}"
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--queues", queue,
            "--include", "tests.security.celery_tasks", "--loglevel", "INFO",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
        ],
        cwd=BASE_DIR,
        env={**os.environ, "LOG_FORMAT": "json", "DEBUG": "0"},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    lines: list[dict[str, Any]] = []
    try:
        structlog.contextvars.bind_contextvars(request_id="req-to-worker-0003")
        try:
            log_from_a_task.apply_async(queue=queue)
        finally:
            structlog.contextvars.clear_contextvars()
        assert worker.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.get("event") == "task_ran" for line in lines):
            raw = worker.stderr.readline()
            if not raw and worker.poll() is not None:
                break
            if raw.startswith("{"):
                lines.append(json.loads(raw))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    ran = [line for line in lines if line.get("event") in ("task_ran", "plain logging in a task")]
    assert len(ran) >= 1, lines
    assert {line["request_id"] for line in ran} == {"req-to-worker-0003"}


def test_a_task_without_a_request_gets_an_id_of_its_own(json_logs: JsonLines) -> None:
    result = log_from_a_task.apply()
    assert json_logs.events("task_ran")[0]["request_id"] == f"task-{result.id}"


def test_sign_in_failures_are_logged_without_the_address(
    client: Client, json_logs: JsonLines, support_user: Any
) -> None:
    support_user.email = "siri@wphosting.example"
    support_user.set_password(PASSWORD)
    support_user.save()
    client.post(reverse("admin:login"), {"login": "siri@wphosting.example", "password": "wrong"})
    client.post(reverse("admin:login"), {"login": "SIRI@wphosting.example ", "password": "wrong again"})
    failed = json_logs.events("sign_in_failed")
    assert [line["method"] for line in failed] == ["password", "password"]
    # The same address typed twice gives the same pseudonym, so guessing at one account shows.
    assert failed[0]["login_hash"] == failed[1]["login_hash"] == logs.login_hash("siri@wphosting.example")
    assert "wphosting.example" not in json.dumps(list(json_logs)).lower()


def test_a_refusal_is_logged_with_the_user_id(
    client: Client, json_logs: JsonLines, support_user: Any
) -> None:
    client.force_login(support_user)  # no second factor
    client.get(reverse("admin:index"))
    refused = json_logs.events("sign_in_refused")
    assert refused == [{**refused[0], "reason": "staff_no_authenticator", "user_id": support_user.pk}]


def test_forbidden_and_throttled_answers_are_logged(client: Client, json_logs: JsonLines, alice: Any) -> None:
    client.force_login(alice.user)
    client.get(reverse("admin:login"))  # a customer at the staff sign-in
    refused = json_logs.events("request_refused")
    assert refused and refused[0]["status"] == 403 and refused[0]["user_id"] == alice.user.pk


@pytest.mark.logs_personal_data
def test_the_last_line_of_defence_masks_addresses_and_secrets(json_logs: JsonLines) -> None:
    logger = logging.getLogger("tests.security.careless")
    logger.warning("mail to %s failed", "kari.nordmann@fjellstue.example.no")
    logger.warning("GET https://bucket.s3/x.zip?X-Amz-Signature=abc123def&X-Amz-Credential=AKIA/eu")
    logger.warning("code=VKPG-TWSV sessionid=abcdefghijklmnop token: s3cr3t")
    logger.warning("GET /admin/?q=siri.support%40wphosting.example.no 200")
    logger.warning("GET /admin/?q=siri.support%2540wphosting.example.no 200")
    logger.warning("mail to ola.normann\uff20wphosting.example.no failed")
    structlog.get_logger("tests.security.careless").warning("careless", user={"email": "ola@example.no"})
    try:
        raise ValueError("no user with e-mail per@example.no")
    except ValueError:
        logger.exception("lookup failed")
    written = json_logs.stream.getvalue()
    for secret in (
        "kari.nordmann",
        "abc123def",
        "AKIA",
        "VKPG-TWSV",
        "abcdefghijklmnop",
        "s3cr3t",
        "ola@",
        "per@",
        "siri.support",
        "ola.normann",
    ):
        assert secret not in written, secret
    assert written.count("[e-mail]") >= 6
    assert "[redacted]" in written


def test_the_suite_wide_check_finds_an_address_in_any_line() -> None:
    capture = SuiteLogCapture()
    logger = logging.getLogger("tests.security.detector")
    logger.addHandler(capture)
    logger.propagate = False
    try:
        logger.warning("customer %s", 17)
        logger.warning("mail to %s", "Kari.Nordmann@Fjellstue.example.no")
        structlog.stdlib.get_logger("tests.security.detector").warning("event", to="ola@example.no")
    finally:
        logger.removeHandler(capture)
        logger.propagate = True
    assert [line for _test, line in lines_with_email(capture.lines)] == [
        capture.lines[1][1],
        capture.lines[2][1],
    ]
    assert not EMAIL_IN_LOG.search("user_id=17 login_hash=6c49de93ce0af33b request_id=edge-7f3a9c21")


@pytest.mark.parametrize(
    "carried",
    [
        "GET /admin/?q=kari.nordmann%40fjellstue.example.no",
        "GET /admin/?q=kari.nordmann%2540fjellstue.example.no",
        "GET /admin/?q=kari.nordmann%252540fjellstue.example.no",
        "GET /admin/?q=KARI.NORDMANN%40FJELLSTUE.EXAMPLE.NO",
        "GET /admin/?q=kari+nordmann%40fjellstue%2Eexample%2Eno",
        "GET /admin/?q=kari%2Bnordmann@fjellstue.example.no",
        "next=%2Fmy-data%2F%3Femail%3Dkari%2540fjellstue.example.no",
        "mail to kari\uff20fjellstue.example.no",
    ],
)
def test_the_suite_wide_check_finds_an_address_in_any_encoding(carried: str) -> None:
    assert lines_with_email([("a test", carried)]) == [("a test", carried)]


# --- The request line: the portal's one access log -----------------------------------------------


def test_the_development_servers_own_request_lines_are_silenced() -> None:
    # runserver (`make run`) and the live-server tests log the request line as sent, query and all.
    assert not logging.getLogger("django.server").isEnabledFor(logging.ERROR)


def test_each_request_writes_one_line_with_what_an_access_log_holds(
    client: Client, json_logs: JsonLines
) -> None:
    response = client.get("/privacy/?page=2", headers={"X-Request-ID": "edge-5c1d2e3f"})
    assert response.status_code == 200
    [line] = json_logs.events("request")
    assert line["logger"] == "portal.request" and line["level"] == "info"
    assert {key: line[key] for key in ("method", "path", "query", "status", "request_id", "client")} == {
        "method": "GET",
        "path": "/privacy/",
        "query": "page=2",
        "status": 200,
        "request_id": "edge-5c1d2e3f",
        "client": "127.0.0.1",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user_id"] is None and "timestamp" in line


def test_the_request_line_names_the_signed_in_user_by_id(
    client: Client, json_logs: JsonLines, alice: Any
) -> None:
    client.force_login(alice.user)
    client.get("/my-data/")
    [line] = json_logs.events("request")
    assert line["user_id"] == alice.user.pk and line["status"] == 200


def test_behind_the_proxy_the_client_is_the_address_the_proxy_saw(
    client: Client, json_logs: JsonLines, settings: Any
) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # what BEHIND_TLS_PROXY=1 sets
    # The client may write what it likes in X-Forwarded-For; the proxy appends the address it saw.
    client.get("/privacy/", headers={"X-Forwarded-For": "10.9.8.7, 203.0.113.44"}, REMOTE_ADDR="10.0.0.2")
    assert json_logs.events("request")[0]["client"] == "203.0.113.44"


def test_without_a_trusted_proxy_a_forwarded_for_header_is_ignored(
    client: Client, json_logs: JsonLines
) -> None:
    client.get("/privacy/", headers={"X-Forwarded-For": "203.0.113.44"}, REMOTE_ADDR="192.0.2.10")
    assert json_logs.events("request")[0]["client"] == "192.0.2.10"


ADDRESS_IN_QUERIES = [
    "q=kari.nordmann@fjellstue.example.no",
    "q=kari.nordmann%40fjellstue.example.no",
    "q=kari.nordmann%2540fjellstue.example.no",
    "q=kari.nordmann%252540fjellstue.example.no",
    "q=KARI.NORDMANN%40FJELLSTUE.EXAMPLE.NO",
    "q=kari+nordmann@fjellstue.example.no",
    "q=kari%2Bnordmann%40fjellstue.example.no",
    "email=kari.nordmann%40fjellstue.example.no&page=2",
    "next=%2Fmy-data%2F%3Femail%3Dkari.nordmann%2540fjellstue.example.no",
    "kari.nordmann%40fjellstue.example.no=1",
    "q=kari.nordmann%EF%BC%A0fjellstue.example.no",
    "q=kari.nordmann\uff20fjellstue.example.no",
]


@pytest.mark.parametrize("query", ADDRESS_IN_QUERIES)
def test_no_address_reaches_the_request_line_however_it_is_encoded(
    client: Client, json_logs: JsonLines, query: str
) -> None:
    # The suite-wide check (tests/conftest.py) fails this test too if the record held the address.
    client.get(f"/privacy/?{query}")
    [line] = json_logs.events("request")
    written = json.dumps(line).lower()
    assert "kari" not in written and "fjellstue" not in written, line["query"]
    assert "[e-mail]" in line["query"]


def test_staff_searching_customers_by_address_leave_no_address_in_the_log(
    client: Client, json_logs: JsonLines, superuser: Any, mfa_login: Any, alice: Any
) -> None:
    # The report's case: gunicorn's access log wrote `?q=name@example.no` as it came.
    mfa_login(client, superuser)
    for query in ("q=alice%40example.no", "q=alice@example.no", "q=alice%2540example.no"):
        assert client.get(f"/admin/customers/customer/?{query}").status_code == 200
    lines = json_logs.events("request")
    assert [line["query"] for line in lines] == ["q=[e-mail]"] * 3
    assert all(line["user_id"] == superuser.pk for line in lines)
    assert "alice" not in json_logs.stream.getvalue()


def test_codes_tokens_and_searches_are_taken_out_of_the_query(client: Client, json_logs: JsonLines) -> None:
    client.get(
        "/privacy/?code=VKPG-TWSV&token=abc123xyz&key=s3cr3tkey&X-Amz-Signature=deadbeef01"
        "&q=Kari+Nordmann&term=Hansen&page=2&o=1"
    )
    [line] = json_logs.events("request")
    for secret in ("VKPG-TWSV", "abc123xyz", "s3cr3tkey", "deadbeef01", "Kari", "Nordmann", "Hansen"):
        assert secret not in line["query"], secret
    assert line["query"] == (
        "code=[redacted]&token=[redacted]&key=[redacted]&X-Amz-Signature=[redacted]"
        "&q=[search]&term=[search]&page=2&o=1"
    )


def test_a_url_to_go_on_to_has_its_query_scrubbed_too() -> None:
    scrubbed = logs.scrub_query_string("next=%2Fmy-data%2F%3Fcode%3DVKPG-TWSV%26tab%3D2")
    assert "VKPG" not in scrubbed
    assert unquote_plus(scrubbed) == "next=/my-data/?code=[redacted]&tab=2"


def test_a_secret_in_the_path_is_taken_out() -> None:
    request = RequestFactory().get("/accounts/confirm-email/MTc:1vQx2:s3cr3t-confirmation-key/")
    request.resolver_match = ResolverMatch(
        lambda request: None, args=(), kwargs={"key": "MTc:1vQx2:s3cr3t-confirmation-key"}
    )
    assert logs.scrub_path(request) == "/accounts/confirm-email/[redacted]/"
    reset = RequestFactory().get("/accounts/password/reset/key/1z-4f9kq2-0d5e8a7b6c/")
    reset.resolver_match = ResolverMatch(
        lambda request: None, args=(), kwargs={"uidb36": "1z", "key": "4f9kq2-0d5e8a7b6c"}
    )
    assert logs.scrub_path(reset) == "/accounts/password/reset/key/1z-[redacted]/"


def test_a_worker_keeps_the_portals_logging_and_its_task_lines_reach_it(json_logs: JsonLines) -> None:
    """A Celery worker sets up logging when it starts (`app.log.setup`, as `celery worker` and the
    suite's embedded workers do). Left to itself it replaces the root logger's handlers with its
    own plain, unscrubbed format and stops task loggers propagating; the portal's logging (JSON,
    with the scrubber) must stay the only one."""
    from portal.celery import app

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    was_setup = type(app.log)._setup
    type(app.log)._setup = False
    try:
        app.log.setup(loglevel="ERROR")
        assert root.handlers == handlers and root.level == level
        log_from_a_task.apply()
        assert json_logs.events("task_ran")
    finally:
        type(app.log)._setup = was_setup
