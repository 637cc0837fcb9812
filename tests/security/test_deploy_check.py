"""`manage.py check --deploy --fail-level WARNING` passes with production settings (CI runs it too,
in .ci/run): the environment README.md's "Production settings" and .env.example describe."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
# What a production deployment sets (README.md, "Production settings"); SECURE_TRANSPORT stays at
# its default, on.
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "kundedata.wphosting.example",
    "CSRF_TRUSTED_ORIGINS": "https://kundedata.wphosting.example",
    "EMAIL_URL": "smtp+tls://portal%40wphosting.example:app-password@smtp.wphosting.example:587",
}
# Variables of the developer's or CI's environment that would change the outcome.
NOT_INHERITED = {
    "DEBUG",
    "DJANGO_SECRET_KEY",
    "SECURE_TRANSPORT",
    "BEHIND_TLS_PROXY",
    "EMAIL_URL",
    "ALLOWED_HOSTS",
}


def _check_deploy(**environment: str) -> subprocess.CompletedProcess[str]:
    inherited = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("behind_proxy", ["0", "1"])
def test_production_settings_pass_the_deploy_check_without_warnings(behind_proxy: str) -> None:
    result = _check_deploy(
        **PRODUCTION, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), BEHIND_TLS_PROXY=behind_proxy
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_check_fails_when_production_runs_without_https() -> None:
    # The check is not a formality: plain http in production is a warning, and a warning fails it.
    result = _check_deploy(**PRODUCTION, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), SECURE_TRANSPORT="0")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_the_check_fails_with_a_short_secret_key() -> None:
    result = _check_deploy(**PRODUCTION, DJANGO_SECRET_KEY="too-short")
    assert result.returncode != 0
    assert "security.W009" in result.stderr
