"""Settings come from the environment; a missing secret is a clear error, not a silent default."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def _load_settings(**environment: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in {"DJANGO_SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_secret_key_with_debug_off_names_the_variable() -> None:
    result = _load_settings(DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_is_off_by_default() -> None:
    result = _load_settings(DJANGO_SECRET_KEY="a-long-enough-secret-for-this-test-0123456789")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_debug_runs_without_a_secret_key() -> None:
    result = _load_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_time_zone_languages_and_storage_defaults(settings) -> None:
    assert settings.TIME_ZONE == "Europe/Oslo"
    assert settings.USE_TZ is True
    assert settings.LANGUAGE_CODE == "nb"
    assert [code for code, _name in settings.LANGUAGES] == ["nb", "en"]
    assert settings.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    # The test run swaps the console mailer for the in-memory one.
    assert settings.MAILERS["default"]["BACKEND"] == "django.core.mail.backends.locmem.EmailBackend"


def test_s3_storage_when_a_bucket_is_configured() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "d = settings.STORAGES['default']; print(d['BACKEND'], d['OPTIONS']['bucket_name'], "
        "d['OPTIONS']['object_parameters']['ServerSideEncryption'])"
    )
    clean = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_SECRET_KEY": "x" * 50,
             "AWS_STORAGE_BUCKET_NAME": "portal-exports"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["storages.backends.s3.S3Storage", "portal-exports", "AES256"]


def test_smtp_from_email_url() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "m = settings.MAILERS['default']; print(m['BACKEND'], m['OPTIONS']['host'], m['OPTIONS']['port'], "
        "m['OPTIONS']['use_tls'])"
    )
    clean = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_SECRET_KEY": "x" * 50,
             "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.no:587"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.no",
        "587",
        "True",
    ]
