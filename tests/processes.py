"""Helpers for tests that run portal code in other processes against the test database."""

from __future__ import annotations

import socket
from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    """The test database, as a DATABASE_URL for a child process."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    if host.startswith("/"):  # a Unix socket directory, as the embedded PostgreSQL uses
        return f"postgres://{credentials}@/{db['NAME']}?host={host}"
    return f"postgres://{credentials}@{quote(host, safe='')}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
