"""`/healthz` answers 200 when PostgreSQL and Redis answer, and 503 naming what is down (to a
monitor with the configured token; anyone else learns the status alone, tests/security/
test_small_leaks.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created
from django.test import Client

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "monitor-token-for-the-tests"
DETAILS: dict[str, Any] = {"HTTP_ACCEPT": "application/json", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _monitor_token(settings: Any) -> None:
    settings.HEALTHZ_TOKEN = TOKEN


@pytest.mark.django_db
def test_healthy_when_database_and_redis_answer(client: Client) -> None:
    response = client.get("/healthz", **DETAILS)
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    assert all(value == "OK" for value in body.values())


@pytest.mark.django_db
def test_503_naming_redis_when_redis_is_down(client: Client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    response = client.get("/healthz", **DETAILS)
    assert response.status_code == 503
    failing = [name for name, value in response.json().items() if value != "OK"]
    assert len(failing) == 1
    assert failing[0].startswith("Redis")


def test_503_naming_the_database_when_postgresql_is_down() -> None:
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        f"r = Client().get('/healthz', HTTP_ACCEPT='application/json', HTTP_AUTHORIZATION='Bearer {TOKEN}'); "
        "print(r.status_code, json.dumps(r.json()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_SECRET_KEY": "x" * 50,
             "ALLOWED_HOSTS": "testserver", "HEALTHZ_TOKEN": TOKEN, "DATABASE_URL": "postgres://postgres@127.0.0.1:9/portal"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split(" ", 1)
    assert status == "503"
    failing = [name for name, value in json.loads(body).items() if value != "OK"]
    assert len(failing) == 1
    assert failing[0].startswith("Database")


@pytest.mark.django_db
def test_a_probe_opens_no_database_connection_of_its_own(client: Client) -> None:
    """A load balancer polls every second from every node: each probe asks on the worker's own
    persistent connection instead of opening (and forking a PostgreSQL backend for) a new one."""
    client.get("/healthz", **DETAILS)
    opened: list[object] = []

    def note(sender: object, connection: object, **kwargs: object) -> None:
        opened.append(connection)

    connection_created.connect(note)
    try:
        for _ in range(3):
            assert client.get("/healthz", **DETAILS).status_code == 200
    finally:
        connection_created.disconnect(note)
    assert opened == []
