"""`make test` means the same everywhere: the suite sets the environment it needs itself
(tests/suite_environment.py), so what a developer or CI has exported cannot change its outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from retention.windows import RetentionPeriods
from tests.suite_environment import portal_variables, suite_environment

BASE_DIR = Path(__file__).resolve().parents[2]

# What a developer who has just used `make run` or read .env.example may well have exported.
CALLER = {
    "DEBUG": "1",
    "SECURE_TRANSPORT": "0",
    "RETENTION_CUSTOMER_DATA_MONTHS": "6",
    "RETENTION_EXPORT_DAYS": "2",
    "AWS_STORAGE_BUCKET_NAME": "the-developers-bucket",
    "LOG_FORMAT": "console",
    "ALLOWED_HOSTS": "example.invalid",
    "COMPANY_NAME": "Someone Else AS",
}


def test_the_suite_runs_with_production_settings_and_the_policys_periods(settings: Any) -> None:
    assert settings.DEBUG is False
    assert settings.SECURE_HSTS_SECONDS == 365 * 24 * 3600
    assert RetentionPeriods() == settings.RETENTION  # the policy's own periods
    assert settings.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert settings.LOG_FORMAT == "json"
    assert "example.invalid" not in settings.ALLOWED_HOSTS
    assert settings.COMPANY_NAME == "WP Hosting AS"


def test_every_variable_the_portal_documents_is_the_suites_own() -> None:
    environment = suite_environment({**os.environ, **CALLER, "DATABASE_URL": ""})
    assert {"DEBUG", "AWS_STORAGE_BUCKET_NAME", "ZENDESK_API_TOKEN"} <= portal_variables()
    assert environment["DEBUG"] == "0"
    assert not {key for key in environment if key.startswith("RETENTION_")}
    assert "AWS_STORAGE_BUCKET_NAME" not in environment
    # An empty DATABASE_URL means "none": the embedded server, never a URL Django cannot parse.
    assert "DATABASE_URL" not in environment


def test_a_callers_exported_settings_do_not_change_the_outcome() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            f"{Path(__file__).relative_to(BASE_DIR)}::test_the_suite_runs_with_production_settings_and_the_policys_periods",
            "tests/security/test_headers.py::test_production_sends_hsts_on_https",
        ],
        cwd=BASE_DIR,
        env={**os.environ, **CALLER},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
