"""Benchmark: the portal's pages under gunicorn against plain Django views, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python benchmarks/web.py [--duration 10]

It never touches the database in DATABASE_URL: it creates `<name>_bench_web`, migrates it, seeds one
customer (a contract, 60 invoices with a line and a payment each, 200 correspondence threads, two
access requests) and signs her in, then starts gunicorn (2 sync workers, as deployed) with the
portal's production settings: DEBUG off, a throwaway secret key, SECURE_TRANSPORT off so plain http
on 127.0.0.1 is served, persistent database connections. The same gunicorn serves two anchors from a
benchmark-only URLconf (benchmarks/web_urls.py) through the same middleware:

- a plain Django template view (no query), the anchor of /privacy/;
- a plain Django view with 3 indexed queries, the anchor of /my-data/.

wrk (Debian's package; `make benchmarks` installs it when missing) drives each page for `--duration`
seconds after a short warm-up, and the benchmark prints req/s, p50 and p99 and each page's ratio to
its anchor measured minutes apart in the same run. Goals: /my-data/ signed in >= 0.5x the 3-query
view at 16 connections, p99 < 100 ms at 64; /privacy/ >= 0.5x the template view; /healthz cheap
enough to be polled every second by several load balancers. Measured, never asserted
(tests/benchmarks/ runs it tiny so it keeps working).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from benchmarks import databases  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
SETTINGS_MODULE = "benchmarks.web_settings"
GOALS = {"my_data_c16": 0.5, "privacy": 0.5}
P99_GOAL_MS = 100.0


@dataclass(frozen=True)
class Page:
    key: str
    title: str
    path: str
    connections: str  # "low" or "high"
    signed_in: bool = False
    anchor: str | None = None  # the key of the page it is compared with


PAGES = (
    Page("template", "anchor: plain Django template view", "/bench/template/", "low"),
    Page("queries_c16", "anchor: plain view, 3 indexed queries", "/bench/queries/", "low"),
    Page("queries_c64", "anchor: plain view, 3 indexed queries", "/bench/queries/", "high"),
    Page("my_data_c16", "/my-data/ signed in", "/my-data/", "low", True, "queries_c16"),
    Page("my_data_c64", "/my-data/ signed in", "/my-data/", "high", True, "queries_c64"),
    Page("privacy", "/privacy/", "/privacy/", "low", anchor="template"),
    Page("healthz", "/healthz", "/healthz", "low", anchor="template"),
)


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


# --- its own database -----------------------------------------------------------------------------


def bench_database_url(base_url: str) -> tuple[str, str]:
    return databases.bench_database_url(base_url, "web")


def production_environment(database_url: str) -> dict[str, str]:
    """What gunicorn and this process run with: production settings, plain http on 127.0.0.1."""
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "SECURE_TRANSPORT": "0",
        "BEHIND_TLS_PROXY": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }


def seed() -> dict[str, Any]:
    """One signed-in customer with a realistic history; returns her id and session cookie."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from access_requests.models import AccessRequest
    from benchmarks.export import seed_customer
    from customers.models import Customer

    customer_id = seed_customer(correspondence=200, invoices=60, label="web")
    customer = Customer.objects.get(pk=customer_id)
    customer.user = get_user_model().objects.create_user(username="bench-web", email=customer.email)
    customer.save(update_fields=["user"])
    now = timezone.now()
    AccessRequest.objects.create(
        customer=customer,
        status=AccessRequest.Status.EXPIRED,
        received_at=now - timedelta(days=90),
        due_on=(now - timedelta(days=60)).date(),
        ready_at=now - timedelta(days=89),
        expires_at=now - timedelta(days=82),
    )
    AccessRequest.objects.create(
        customer=customer,
        status=AccessRequest.Status.DOWNLOADED,
        received_at=now - timedelta(days=2),
        due_on=(now + timedelta(days=28)).date(),
        ready_at=now - timedelta(days=2),
        expires_at=now + timedelta(days=5),
        export_name="exports/bench.zip",
        downloaded_at=now - timedelta(days=1),
        download_count=1,
    )
    client = Client()
    client.force_login(customer.user)  # the portal's sign-in signal starts the session clock
    return {"customer_id": customer_id, "session": client.cookies["sessionid"].value}


# --- gunicorn and wrk -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(*, port: int, workers: int, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "sync", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **environment}, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/template/", timeout=2):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop(server)
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: the master and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def fetch(url: str, *, cookie: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Result:
    """req/s, the 50th and 99th latency percentiles and the error count from `wrk --latency`."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    requests = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not (rate and requests and "50" in percentiles and "99" in percentiles):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Result(
        requests_per_second=float(rate.group(1)),
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        requests=int(requests.group(1)),
        errors=errors,
    )


def run_wrk(url: str, *, connections: int, seconds: float, cookie: str | None) -> Result:
    command = [
        "wrk",
        "--latency",
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse_wrk(output.stdout)


def check_pages(base: str, *, cookie: str, customer_name: str) -> None:
    """Each page answers 200 with what it should show, so a redirect or an error page is never
    what gets measured."""
    expectations = {
        "/bench/template/": (None, "Anchor"),
        "/bench/queries/": (None, "Anchor"),
        "/my-data/": (cookie, customer_name),
        "/privacy/": (None, "<h1"),
        "/healthz": (None, ""),
    }
    for path, (with_cookie, text) in expectations.items():
        status, body = fetch(base + path, cookie=with_cookie)
        if status != 200 or text not in body:
            raise RuntimeError(f"{path} answered {status} without {text!r}: {body[:500]}")


def measure(
    base: str, *, cookie: str, customer_id: int, seconds: float, warm_up: float, low: int, high: int
) -> dict[str, Result]:
    results = {}
    for page in PAGES:
        connections = low if page.connections == "low" else high
        page_cookie = cookie if page.signed_in else None
        url = base + page.path + (f"?customer={customer_id}" if page.path == "/bench/queries/" else "")
        if warm_up > 0:
            run_wrk(url, connections=connections, seconds=warm_up, cookie=page_cookie)
        print(f"measuring {page.title} at {connections} connections …", flush=True)
        results[page.key] = run_wrk(url, connections=connections, seconds=seconds, cookie=page_cookie)
        drain(base)
    return results


def drain(base: str, *, within: float = 120.0) -> None:
    """Wait until gunicorn has worked off the requests wrk left queued when it stopped, so the
    next page is not measured against the last one's backlog."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            fetch(base + "/bench/template/", cookie=None)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            continue
        if time.monotonic() - started < 0.2:
            return
        time.sleep(0.5)


def report(results: dict[str, Result], *, low: int, high: int, workers: int) -> None:
    print(f"\nPages under gunicorn ({workers} sync workers, production settings), wrk -t2; "
          f"ratios against the anchor in this run")  # fmt: skip
    print(f"  {'page':<42} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  ratio")
    for page in PAGES:
        result = results[page.key]
        connections = low if page.connections == "low" else high
        ratio = ""
        if page.anchor is not None:
            value = result.requests_per_second / max(results[page.anchor].requests_per_second, 0.001)
            goal = GOALS.get(page.key)
            ratio = f"{value:.2f}x {page.anchor}" + (f" (goal >= {goal})" if goal else "")
        print(f"  {page.title:<42} {connections:>5} {result.requests_per_second:>9,.0f} "
              f"{result.p50_ms:>8.1f} {result.p99_ms:>8.1f} {result.errors:>6}  {ratio}")  # fmt: skip
    print(f"  /my-data/ p99 at {high} connections: {results['my_data_c64'].p99_ms:.0f} ms "
          f"(goal < {P99_GOAL_MS:.0f} ms)")  # fmt: skip
    healthz = results["healthz"]
    worker_ms = 1000.0 * workers / max(healthz.requests_per_second, 0.001)
    print(f"  /healthz costs about {worker_ms:.1f} ms of a worker per call: polled every second by 3 "
          f"load balancers, {0.3 * worker_ms:.2f} % of one worker's time")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds wrk drives each page")
    parser.add_argument("--warm-up", type=float, default=2.0, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--high-connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    arguments = parser.parse_args(argv)

    database_url, name = bench_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    environment = production_environment(database_url)
    os.environ.update(environment)
    databases.admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    seeded = seed()
    from customers.models import Customer

    customer_name = Customer.objects.get(pk=seeded["customer_id"]).name
    connection.close()

    port = free_port()
    server = start_gunicorn(port=port, workers=arguments.workers, environment=environment)
    try:
        base, cookie = f"http://127.0.0.1:{port}", f"sessionid={seeded['session']}"
        check_pages(base, cookie=cookie, customer_name=customer_name)
        results = measure(
            base,
            cookie=cookie,
            customer_id=seeded["customer_id"],
            seconds=arguments.duration,
            warm_up=arguments.warm_up,
            low=arguments.connections,
            high=arguments.high_connections,
        )
    finally:
        stop(server)
        if not arguments.keep:
            databases.admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(results, low=arguments.connections, high=arguments.high_connections, workers=arguments.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
