"""The environment the suite runs in, set before Django reads its settings.

Loaded as a pytest plugin (`-p tests.suite_environment` in pyproject's addopts), so it runs before
pytest-django imports `portal.settings`, whoever starts pytest: `make test`, an editor, or a bare
`python -m pytest`. Every variable the portal reads (the ones `.env.example` documents, and any
`RETENTION_*` override) is taken away from the caller and set to the suite's own value, and the
checkout's `.env` is not read: a developer's `DEBUG=1`, `RETENTION_CUSTOMER_DATA_MONTHS=6` or S3
bucket can never change what the suite says. Only the servers it runs against come from outside:
`DATABASE_URL` and `REDIS_URL` (embedded ones when unset, see `portal.launch`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The servers the suite runs against: the caller's (CI's, a helper's), or the embedded ones.
SERVERS = ("DATABASE_URL", "REDIS_URL")
# What the portal reads besides the variables .env.example documents.
PREFIXES = ("RETENTION_",)
# The suite's own values: production settings (DEBUG off, so SECURE_TRANSPORT, HSTS and the rest
# are on as deployed), a throwaway key, and no `.env` file.
SUITE = {
    "DEBUG": "0",
    "DJANGO_SECRET_KEY": "test-secret-key-not-for-production-use-0123456789",
    "PORTAL_IGNORE_DOTENV": "1",
}
SETTING_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def portal_variables() -> set[str]:
    """Every variable .env.example documents (set or commented out)."""
    return set(SETTING_LINE.findall((BASE_DIR / ".env.example").read_text()))


def suite_environment(caller: dict[str, str]) -> dict[str, str]:
    """The caller's environment with everything the portal reads replaced by the suite's values."""
    owned = portal_variables() - set(SERVERS)
    environment = {
        key: value
        for key, value in caller.items()
        if key not in owned and not key.startswith(PREFIXES) and not (key in SERVERS and not value.strip())
    }
    return {**environment, **SUITE}


def _apply() -> None:
    environment = suite_environment(dict(os.environ))
    for key in set(os.environ) - set(environment):
        del os.environ[key]
    os.environ.update(environment)


_apply()
