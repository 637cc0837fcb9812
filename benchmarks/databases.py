"""The database each benchmark builds for itself, beside the configured one (never in it)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def bench_database_url(base_url: str, benchmark: str) -> tuple[str, str]:
    """The benchmark's URL and database name beside the configured one: `<name>_bench_<benchmark>`."""
    parts = urlsplit(base_url)
    name = f"{parts.path.lstrip('/') or 'portal'}_bench_{benchmark}"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def admin_execute(url: str, *statements: str) -> None:
    """Run statements outside any transaction, from the server's maintenance database."""
    import psycopg

    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)
