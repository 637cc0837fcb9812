"""Fixtures of the security tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters(settings: Any) -> None:
    # tests/conftest.py gives each test its own cache keys by test id; rate-limit counters live for
    # minutes, so a test run again soon after would find the last run's. A fresh prefix per run.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"security-{uuid.uuid4().hex}"}
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Sign-in tests check many passwords; the production hasher's cost adds nothing to what they prove.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
