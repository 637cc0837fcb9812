"""Personas and real services for the whole suite.

Alice is a customer; Bob is another customer who must never see her data; the staff users each
belong to one staff group. Tests run against real PostgreSQL and Redis (see `portal.launch`).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.utils import translation

from customers.models import Customer
from tests.factories import ContractFactory, CustomerFactory, PersonCustomerFactory, UserFactory
from tests.security.sign_in import sign_in_with_second_factor

pytest_plugins = ["tests.fixtures_s3"]


@pytest.fixture(autouse=True)
def _english_outside_requests() -> Any:
    # Services and validators speak the active language; tests that call them directly read
    # English. Requests still choose their language through LocaleMiddleware (Norwegian default).
    with translation.override("en"):
        yield


RUN_ID = uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
def _isolated_cache(settings: Any, request: pytest.FixtureRequest) -> None:
    # Each test sees its own keys in the shared Redis, in this run only (rate-limit counters of an
    # earlier run within their window must not leak into this one).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{RUN_ID}-{request.node.nodeid}"}
    }


@pytest.fixture
def export_storage_dir(settings: Any, tmp_path: Path) -> Path:
    """Exports go to a directory of this test's own (never the developer's .data/media)."""
    location = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture
def alice(db: None) -> Customer:
    customer = PersonCustomerFactory.create(
        name="Alice Hansen",
        email="alice@example.no",
        phone="+47 91234567",
        user=UserFactory.create(username="alice"),
    )
    ContractFactory.create(customer=customer)
    return customer


@pytest.fixture
def bob(db: None) -> Customer:
    customer = CustomerFactory.create(
        name="Bob Berg AS", email="bob@berg.example.no", user=UserFactory.create(username="bob")
    )
    ContractFactory.create(customer=customer)
    return customer


def staff_group_migrations(loader: Any) -> list[Any]:
    """The data migrations that create the staff groups and grant their permissions, in the order
    they run: every migration of the project whose code asks for auth's Group model (found, not
    listed, so the next app's grant is restored without anyone remembering)."""
    import inspect

    project = str(Path(__file__).resolve().parent.parent)
    ordered: dict[Any, None] = {}
    for leaf in sorted(loader.graph.leaf_nodes()):
        ordered.update(dict.fromkeys(loader.graph.forwards_plan(leaf)))
    found = []
    for node in ordered:
        migration = loader.get_migration(*node)
        module = inspect.getmodule(migration)
        if module is None or not str(module.__file__).startswith(project):
            continue
        if 'get_model("auth", "Group")' in inspect.getsource(module):
            found.append(migration)
    return found


def restore_staff_groups() -> None:
    """Re-run the staff-group data migrations, as the migrations saw the models. A transactional
    test (live server, killed workers) empties every table when it ends, the groups with them;
    the tests that run after it on the same worker need them back."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations import RunPython

    loader = MigrationLoader(connection)
    state_apps = loader.project_state().apps
    for migration in staff_group_migrations(loader):
        for operation in migration.operations:
            if isinstance(operation, RunPython):
                operation.code(state_apps, None)  # type: ignore[arg-type]  # the grants use no schema editor


@pytest.fixture
def staff_groups(db: None) -> None:
    """The staff groups as the migrations make them, even after a transactional test emptied the
    tables (for tests that read the groups without a staff persona)."""
    if Group.objects.filter(name__in=["Support", "Billing", "Privacy officer"]).count() < 3:
        restore_staff_groups()


def _staff_user(username: str, group_name: str) -> Any:
    user = UserFactory.create(username=username, is_staff=True)
    if not Group.objects.filter(name=group_name).exists():
        restore_staff_groups()
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def support_user(db: None) -> Any:
    return _staff_user("siri-support", "Support")


@pytest.fixture
def billing_user(db: None) -> Any:
    return _staff_user("bjorn-billing", "Billing")


@pytest.fixture
def privacy_officer(db: None) -> Any:
    return _staff_user("pernille-privacy", "Privacy officer")


@pytest.fixture
def superuser(db: None) -> Any:
    return UserFactory.create(username="root-admin", is_staff=True, is_superuser=True)


# --- Security: staff sign-in with a second factor, plain http, no e-mail in any log line ----------
# (portal/security.py, portal/logs.py; tests in tests/security/)


@pytest.fixture(scope="session", autouse=True)
def _plain_http_test_client() -> Iterator[None]:
    # The suite runs with DEBUG off, so SECURE_TRANSPORT is on as in production; the test client
    # and the live server speak plain http, which would be redirected to https and lose its Secure
    # cookies. Session-wide, so the live server's middleware (loaded once) sees it too.
    # tests/security/test_headers.py checks the production values with secure requests, and
    # test_deploy_check.py the production settings as a whole.
    with override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False):
        yield


@pytest.fixture
def mfa_login() -> Callable[[Client, Any], Authenticator]:
    """`mfa_login(client, user)`: sign a staff user in with two-factor authentication, as /admin/
    and the staff API require (a bare `client.force_login` is sent to set up two-factor)."""
    return sign_in_with_second_factor


# An address as typed, and as a URL carries it: the at sign (and the dots) percent-encoded once or
# more (%40, %2540, ...), in either case, or typed as a full-width or small at sign.
EMAIL_IN_LOG = re.compile(
    r"[A-Za-z0-9._%+-]+(?:[@\uff20\ufe6b]|%(?:25)*40)[A-Za-z0-9-]+(?:(?:\.|%(?:25)*2E)[A-Za-z0-9-]+)*(?:\.|%(?:25)*2E)[A-Za-z]{2,}",
    re.IGNORECASE,
)


class SuiteLogCapture(logging.Handler):
    """Every log record of the run, formatted plainly (never through the portal's scrubbing
    formatter: what is checked is what the code tried to log)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[tuple[str, str]] = []
        self.test = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is still checked, raw
            line = f"{record.name} {record.msg!r} {record.args!r}"
        self.lines.append((self.test, line))


def lines_with_email(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(test, line) for test, line in lines if EMAIL_IN_LOG.search(line)]


SUITE_LOG_CAPTURE = SuiteLogCapture()


@pytest.fixture(scope="session", autouse=True)
def suite_log_capture() -> Iterator[SuiteLogCapture]:
    root = logging.getLogger()
    root.addHandler(SUITE_LOG_CAPTURE)
    try:
        yield SUITE_LOG_CAPTURE
    finally:
        root.removeHandler(SUITE_LOG_CAPTURE)


@pytest.fixture(autouse=True)
def _no_email_address_in_logs(
    request: pytest.FixtureRequest, suite_log_capture: SuiteLogCapture
) -> Iterator[None]:
    """A test whose code logs an e-mail address fails (as an error in its teardown), naming the line."""
    suite_log_capture.test = request.node.nodeid
    start = len(suite_log_capture.lines)
    yield
    leaked = lines_with_email(suite_log_capture.lines[start:])
    suite_log_capture.test = ""
    if leaked and request.node.get_closest_marker("logs_personal_data") is None:
        pytest.fail(
            "log lines with an e-mail address (log ids, or portal.logs.login_hash, instead):\n"
            + "\n".join(line for _test, line in leaked),
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "logs_personal_data: the test logs an e-mail address on purpose (the scrubber's tests)"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Lines logged outside any test (session fixtures, collection) are checked here.
    outside = [line for test, line in lines_with_email(SUITE_LOG_CAPTURE.lines) if not test]
    if outside:
        print("\nlog lines with an e-mail address outside any test:\n" + "\n".join(outside))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
