"""End to end, in a real browser: Alice signs in with a code, asks for a copy of her data, watches
the page become ready while a real Celery worker builds it, downloads the ZIP, every file in it
matches its checksum in the manifest, and the index.html she unpacks shows her data in Norwegian
and English.

Debian's Chromium (/usr/bin/chromium) drives the portal served by pytest-django's live server; the
worker runs in a thread of this process against the Redis broker from the settings, on a queue of
this test's own, so it never takes another test's (or developer's) tasks. Nothing is downloaded:
no browser, no fonts, no scripts from a CDN.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connections
from playwright.sync_api import Browser, BrowserType, Playwright, sync_playwright

from access_requests.models import AccessRequest
from audit.models import AuditEvent
from customers.models import Customer
from portal.celery import app as celery_app
from tests.access_requests.conftest import issue_invoice
from tests.access_requests.portal_fixtures import local_exports
from tests.browser_axe import serious_violations
from tests.factories import CorrespondenceFactory
from tests.processors.conftest import fake_workspace, fake_zendesk

__all__ = ["fake_workspace", "fake_zendesk", "local_exports"]

CHROMIUM = Path("/usr/bin/chromium")
CODE_LINE = re.compile(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", re.MULTILINE)
READY_WITHIN_MS = 90_000


@pytest.fixture(scope="module", autouse=True)
def _django_beside_playwrights_event_loop() -> Iterator[None]:
    # Playwright's sync API keeps an event loop running in this thread, so Django takes the test's
    # own database calls (and pytest-django's set-up and flush of the test database) for calls from
    # async code and refuses them. Nothing async touches the connection; the check is lifted for
    # this module only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


# pytest-playwright keeps one Playwright, and the event loop it runs in this thread, for the whole
# session; Django then refuses database calls in every later test of the same worker. This module's
# own Playwright, browser type and browser stop with the module. `make test` installs Debian's
# Chromium, so a missing browser fails the test instead of skipping it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright) -> BrowserType:
    return playwright.chromium


@pytest.fixture(scope="module")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**options: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **options})

    return launch


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"accept_downloads": True, "locale": "en-GB"}


@pytest.fixture
def own_queue() -> Iterator[str]:
    """Tasks sent during the test go to a queue only this test's worker consumes. The worker's
    thread closes its database connection after each task (no persistent connection), so none is
    left open on the test database when it is dropped."""
    database = connections["default"].settings_dict
    queue = f"browser-test-{uuid.uuid4().hex}"
    before = (celery_app.conf.task_default_queue, celery_app.conf.task_always_eager, database["CONN_MAX_AGE"])
    routes = celery_app.conf.task_routes
    celery_app.conf.task_default_queue = queue
    celery_app.conf.task_always_eager = False
    database["CONN_MAX_AGE"] = 0
    # Every task, the export build included (routed to the exports queue in production), goes to
    # this test's queue; the router caches its table, so it is rebuilt both ways.
    _route_tasks({"*": {"queue": queue}})
    try:
        yield queue
    finally:
        _route_tasks(routes)
        celery_app.conf.task_default_queue, celery_app.conf.task_always_eager, database["CONN_MAX_AGE"] = (
            before
        )


def _route_tasks(routes: Any) -> None:
    celery_app.conf.task_routes = routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)


def sign_in_code_for(email: str) -> str:
    for message in reversed(mail.outbox):
        if message.to == [email] and (match := CODE_LINE.search(str(message.body))):
            return match.group(1)
    raise AssertionError(f"no sign-in code was sent to {email}")


def test_alice_signs_in_asks_for_her_data_and_downloads_it(
    live_server: Any, alice: Customer, local_exports: Path, own_queue: str, tmp_path: Path, page: Any
) -> None:
    page.set_default_timeout(20_000)
    invoice = issue_invoice(alice, issued_on=date(2025, 3, 31), description="Managed WordPress, mars")
    CorrespondenceFactory.create(customer=alice, subject="Nettsiden er treg")

    # Signing in: her address, then the code from the e-mail.
    page.goto(f"{live_server.url}/my-data/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=email]", "alice@example.no")
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url("**/accounts/login/code/confirm/**")
    page.fill("input[name=code]", sign_in_code_for("alice@example.no"))
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url(f"{live_server.url}/my-data/")
    assert "Alice Hansen" in page.content()

    # Asking for a copy: the page shows it received, and polls while nobody builds it yet.
    page.click("form.request-copy button")
    page.wait_for_url(re.compile(r".*/my-data/requests/[0-9a-f-]{36}/$"))
    access_request = AccessRequest.objects.get(customer=alice)
    assert page.get_attribute("#request", "data-status") == "received"
    assert page.locator("progress[data-role=progress]").count() == 1
    page.wait_for_timeout(1500)
    assert page.locator("[data-role=download]").count() == 0

    # A real worker takes the build from the queue; the page notices by itself.
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[own_queue],
        shutdown_timeout=30,
    ):
        page.wait_for_selector("[data-role=download]", timeout=READY_WITHIN_MS)
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.READY
    assert "The file is deleted" in page.content()

    # Downloading: the browser saves the ZIP.
    with page.expect_download() as download_info:
        page.click("[data-role=download]")
    download = download_info.value
    assert download.suggested_filename.startswith("wp-hosting-data-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with zipfile.ZipFile(saved) as archive:
        names = set(archive.namelist())
        assert {"index.html", "data.json", "manifest.json"} <= names
        csvs = {name for name in names if name.endswith(".csv")}
        assert "customers.csv" in csvs
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["algorithm"] == "sha256"
        listed = {entry["name"]: entry for entry in manifest["files"]}
        assert set(listed) == names - {"manifest.json"}
        for name, entry in listed.items():
            content = archive.read(name)
            assert hashlib.sha256(content).hexdigest() == entry["sha256"], name
            assert len(content) == entry["size"], name
        data = json.loads(archive.read("data.json"))
        assert "Alice Hansen" in json.dumps(data, ensure_ascii=False)
        assert "Alice Hansen" in archive.read("customers.csv").decode("utf-8-sig")
        unpacked = tmp_path / "unpacked"
        archive.extractall(unpacked)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == access_request.export_sha256

    # Opening index.html from the unpacked copy, offline: her name, her invoice with its line and
    # amount, and her conversation, in each language as that language writes them.
    page.goto((unpacked / "index.html").as_uri())
    number = invoice.number
    for language, amount, issued in (("nb", "311,25", "31.03.2025"), ("en", "311.25", "31 Mar 2025")):
        section = page.locator(f"section#{language}")
        assert "Alice Hansen" in section.inner_text()
        shown = page.locator(f"tbody:has(#{language}-invoice-{number})")
        assert shown.count() == 1
        text = shown.inner_text()
        assert str(number) in text and "Managed WordPress, mars" in text
        assert amount in text and issued in text
        assert "Nettsiden er treg" in section.locator("[data-file=correspondence]").inner_text()

    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.DOWNLOADED
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.EXPORT_DOWNLOADED, customer_id=alice.pk, object_id=str(access_request.pk)
    ).exists()


def test_kari_asks_for_her_data_to_be_deleted_confirms_with_the_code_and_reads_the_receipt(
    live_server: Any,
    local_exports: Path,
    own_queue: str,
    page: Any,
    settings: Any,
    fake_zendesk: Any,
    fake_workspace: Any,
    tmp_path: Path,
) -> None:
    """A former customer, end to end: the code, the erasure by a real worker (Zendesk and Google
    Workspace erase her too), the receipt; then a dump of the whole database finds her name and
    address only in the billing snapshots of the invoices the Accounting Act keeps."""
    from datetime import date, timedelta

    from django.utils import timezone

    from access_requests.models import ErasureRequest
    from customers.models import Invoice
    from tests.access_requests.conftest import issue_invoice
    from tests.factories import (
        ContactFactory,
        ContractFactory,
        CorrespondenceFactory,
        CustomerFactory,
        UserFactory,
    )

    settings.ERASURE_AUTO_APPROVE = True
    kari = CustomerFactory.create(
        name="Kari Nordmann Design",
        email="kari@nordmann.example.no",
        user=UserFactory.create(username="kari"),
    )
    ended = timezone.localdate() - timedelta(days=10)
    ContractFactory.create(customer=kari, started_on=date(2024, 1, 1), ended_on=ended)
    ContactFactory.create(customer=kari, name="Ola Nordmann", email="ola@nordmann.example.no")
    CorrespondenceFactory.create(customer=kari, subject="Flytting av nettsiden")
    issue_invoice(kari, issued_on=date(2024, 6, 30))
    tickets = fake_zendesk.add_tickets(fake_zendesk.add_user("kari@nordmann.example.no"), 2)
    mail_id = fake_workspace.add_message(
        "support@wphosting.example", sender="kari@nordmann.example.no", to="support@wphosting.example"
    )
    page.set_default_timeout(20_000)

    page.goto(f"{live_server.url}/my-data/")
    page.fill("input[name=email]", "kari@nordmann.example.no")
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url("**/accounts/login/code/confirm/**")
    page.fill("input[name=code]", sign_in_code_for("kari@nordmann.example.no"))
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url(f"{live_server.url}/my-data/")

    assert serious_violations(page) == [], page.url
    page.click("#erasure-heading ~ form button")
    page.wait_for_url(re.compile(r".*/my-data/erasure/[0-9a-f-]{36}/$"))
    assert serious_violations(page) == [], page.url
    (code_mail,) = [
        m for m in mail.outbox if "sletting" in m.subject.lower() and m.to == ["kari@nordmann.example.no"]
    ]
    code = re.search(r"\b(\d{6})\b", str(code_mail.body))
    assert code is not None
    page.fill("input[name=code]", code.group(1))
    page.click("button.button-danger")
    page.wait_for_url(re.compile(r".*/erasure/[A-Za-z0-9_-]{43}/$"))
    receipt_url = page.url

    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[own_queue],
        shutdown_timeout=30,
    ):
        for _attempt in range(60):
            page.goto(receipt_url)
            if page.get_attribute("#erasure", "data-status") == "done":
                break
            page.wait_for_timeout(1000)
    assert page.get_attribute("#erasure", "data-status") == "done"
    assert serious_violations(page) == [], page.url
    receipt_text = page.inner_text("#erasure")
    # The browser asks for English (en-GB).
    assert "Invoices 2024 (1," in receipt_text
    assert "2029: the Accounting Act (bokføringsloven) § 13" in receipt_text
    assert "Zendesk: confirmed deleted" in receipt_text
    assert "Google Workspace: confirmed deleted" in receipt_text

    # Every configured processor was asked, and holds nothing of her.
    assert not set(tickets) & set(fake_zendesk.tickets)
    assert mail_id not in fake_workspace.held("support@wphosting.example")
    # The receipt matches what is left.
    erasure_request = ErasureRequest.objects.get(former_customer_id=kari.pk)
    (kept,) = erasure_request.receipt["kept"][:1]
    assert kept["count"] == Invoice.objects.filter(former_customer_id=kari.pk).count() == 1
    assert not Customer.objects.filter(pk=kari.pk).exists()

    # The whole database, dumped: her name and addresses are only in the kept invoice's snapshot.
    database = connections["default"].settings_dict
    dump = tmp_path / "after.sql"
    host, port = database.get("HOST") or "127.0.0.1", str(database.get("PORT") or 5432)
    user = database.get("USER") or "postgres"
    subprocess.run(
        ["pg_dump", "--data-only", "-h", host, "-p", port, "-U", user, "-f", str(dump), database["NAME"]],
        check=True,
    )
    found: dict[str, set[str]] = {}
    table = ""
    for line in dump.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            table = line.split()[1]
        for needle in (
            "Kari Nordmann",
            "kari@nordmann.example.no",
            "ola@nordmann.example.no",
            "Ola Nordmann",
        ):
            if needle in line:
                found.setdefault(needle, set()).add(table)
    assert found == {
        "Kari Nordmann": {"public.customers_invoice"},
        "kari@nordmann.example.no": {"public.customers_invoice"},
    }
