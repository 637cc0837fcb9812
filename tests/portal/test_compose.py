"""The container stack: docker-compose.yml, Dockerfile, .dockerignore and .env.example.

No Docker engine runs here, so the compose file is validated against the Compose Specification's
JSON schema (vendored in tests/portal/data/, see its README), and the rules the portal's operation
relies on are checked on the parsed file: services start only when what they need is healthy or
done, exactly one beat runs, and every portal process reads one environment that .env.example
documents and settings.py understands.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import validators

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS_FILE = ROOT / "portal" / "settings.py"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

# The services that run portal code from the image built by ./Dockerfile.
APP_SERVICES = ("migrate", "web", "worker", "beat")
# The conditions that mean "ready", not merely "started".
READY_CONDITIONS = {"service_healthy", "service_completed_successfully"}
# Read from the environment by boto3 itself, not by settings.py.
BOTO3_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
SECRETS = {
    "DJANGO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "S3_ADMIN_SECRET_KEY",
    "S3_SSE_KEY",
}
# ${NAME}, ${NAME:-default}, ${NAME:?message}, $NAME; `$$` is a literal dollar sign.
INTERPOLATION = re.compile(r"\$\$|\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# `# NAME=example` in .env.example (commented out) or `NAME=value`.
ENV_ASSIGNMENT = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=")


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # The Draft the schema declares; None (not a silent fallback to the latest) if jsonschema does
    # not know it.
    validator_class = validators.validator_for(schema, default=None)
    assert validator_class is not None, f"jsonschema does not know {schema.get('$schema')!r}"
    assert validator_class.META_SCHEMA["$id"].rstrip("#") == schema["$schema"].rstrip("#")
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def schema_errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    ]


def dependencies(service: dict[str, Any]) -> dict[str, Any]:
    depends_on = service.get("depends_on", {})
    return depends_on if isinstance(depends_on, dict) else {name: {} for name in depends_on}


def words(command: Any) -> list[str]:
    if command is None:
        return []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolated_names(node: Any) -> set[str]:
    return {match for text in strings(node) for match in INTERPOLATION.findall(text) if match}


def settings_variables() -> set[str]:
    """Every NAME in an `env.<cast>("NAME", ...)` or `env("NAME")` call in portal/settings.py."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else node.func
        reads_env = isinstance(receiver, ast.Name) and receiver.id == "env"
        first = node.args[0]
        if reads_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def env_example_lines() -> list[str]:
    return ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()


def env_example_variables() -> set[str]:
    return {match.group(1) for line in env_example_lines() if (match := ENV_ASSIGNMENT.match(line))}


# --- The Compose Specification ------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(schema_validator: Any) -> None:
    errors = schema_errors(schema_validator, load_compose())
    assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(errors)


def test_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def _unknown_top_level_key(document: dict[str, Any]) -> None:
    document["servics"] = {}


def _misspelt_service_attribute(document: dict[str, Any]) -> None:
    web = document["services"]["web"]
    web["healtcheck"] = web.pop("healthcheck")


def _unknown_depends_on_condition(document: dict[str, Any]) -> None:
    document["services"]["web"]["depends_on"]["postgres"]["condition"] = "service_ready"


def _ports_as_a_string(document: dict[str, Any]) -> None:
    document["services"]["web"]["ports"] = "8000:8000"


def _replicas_as_a_list(document: dict[str, Any]) -> None:
    document["services"]["beat"]["deploy"]["replicas"] = [1]


@pytest.mark.parametrize(
    "breakage",
    [
        _unknown_top_level_key,
        _misspelt_service_attribute,
        _unknown_depends_on_condition,
        _ports_as_a_string,
        _replicas_as_a_list,
    ],
)
def test_schema_rejects_a_broken_copy(
    schema_validator: Any, breakage: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(load_compose())
    breakage(broken)
    assert schema_errors(schema_validator, broken), f"{breakage.__name__} went unnoticed"


# --- Start order ---------------------------------------------------------------------------------


def test_depends_on_waits_for_ready_not_started(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form with conditions"
        for target, options in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert options.get("condition") in READY_CONDITIONS, f"{name} -> {target}: {options}"


def test_every_dependency_can_report_that_it_is_ready(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, options in dependencies(service).items():
            dependency = services[target]
            if options.get("condition") == "service_completed_successfully":
                # A one-shot job reports by exiting; it must not be restarted into a loop.
                assert dependency.get("restart") == "no", f"{target} ({name} waits for it) is not one-shot"
            else:
                healthcheck = dependency.get("healthcheck") or {}
                assert healthcheck.get("test"), f"{target} ({name} depends on it) has no healthcheck"
                assert not healthcheck.get("disable"), f"{target} has its healthcheck disabled"
                assert words(healthcheck["test"])[:1] != ["NONE"], f"{target} has its healthcheck disabled"


@pytest.mark.parametrize(
    ("service", "probe"),
    [("postgres", "pg_isready"), ("redis", "redis-cli ping"), ("s3", ":9000/healthz"), ("web", "/healthz")],
)
def test_healthchecks_ask_the_right_question(
    services: dict[str, dict[str, Any]], service: str, probe: str
) -> None:
    assert probe in " ".join(words(services[service]["healthcheck"]["test"]))


def test_migrations_run_once_before_any_portal_process(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert words(migrate["command"])[-3:] == ["manage.py", "migrate", "--noinput"]
    assert dependencies(migrate)["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        assert dependencies(services[name])["migrate"]["condition"] == "service_completed_successfully"


def test_the_buckets_exist_before_anything_writes_to_them(services: dict[str, dict[str, Any]]) -> None:
    createbuckets = services["createbuckets"]
    assert dependencies(createbuckets)["s3"]["condition"] == "service_healthy"
    assert words(services["s3"]["command"])[:2] == ["server", "-ip.bind=0.0.0.0"]
    assert words(createbuckets["command"]) == ["python", "-m", "portal.compose_buckets"]
    # The job creates the very bucket the portal is told to use.
    portal_bucket = services["web"]["environment"]["AWS_STORAGE_BUCKET_NAME"]
    assert createbuckets["environment"]["EXPORT_BUCKET"] == portal_bucket
    assert createbuckets["environment"]["LOG_BUCKET"]
    for name in ("web", "worker"):
        assert dependencies(services[name])["createbuckets"]["condition"] == "service_completed_successfully"


# The majors CI runs the suite against (.ci/run uses the machine's PostgreSQL 15 and Redis 7).
SUITE_MAJORS = {"postgres": "15", "redis": "7"}
# A published SeaweedFS release (Docker Hub chrislusf/seaweedfs, tag 4.44); never `latest`.
S3_IMAGE = re.compile(r"chrislusf/seaweedfs:\d+\.\d+")


def test_the_databases_run_the_majors_the_suite_runs_against(services: dict[str, dict[str, Any]]) -> None:
    for name, major in SUITE_MAJORS.items():
        image = services[name]["image"]
        assert image == f"{name}:{major}" or image.startswith(f"{name}:{major}."), image


def test_the_s3_server_is_a_maintained_one_at_a_pinned_release(services: dict[str, dict[str, Any]]) -> None:
    image = services["s3"]["image"]
    assert S3_IMAGE.fullmatch(image), f"{image}: pin a SeaweedFS release, not a moving tag"
    assert not any("minio" in str(service.get("image", "")) for service in services.values())


def s3_identities(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The identities file as SeaweedFS reads it, with the defaults compose fills in."""
    content = compose["configs"]["s3-identities"]["content"]
    filled = re.sub(r"\$\{([A-Z0-9_]+):-([^}]*)\}", r"\2", content)
    filled = re.sub(r"\$\{([A-Z0-9_]+):\?[^}]*\}", r"<\1>", filled)
    return {identity["name"]: identity for identity in json.loads(filled)["identities"]}


def test_the_portals_s3_identity_may_use_its_two_buckets_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    identities = s3_identities(compose)
    portal = identities["portal-app"]
    assert portal["credentials"] == [
        {"accessKey": "<AWS_ACCESS_KEY_ID>", "secretKey": "<AWS_SECRET_ACCESS_KEY>"}
    ]
    buckets = {action.split(":", 1)[1] for action in portal["actions"] if ":" in action}
    assert buckets == {"portal-exports", "portal-server-logs"}
    assert all(":" in action for action in portal["actions"]), "an action on every bucket"
    # Only the log bucket's lifecycle rule is the portal's to keep.
    assert [action for action in portal["actions"] if action.startswith("Admin")] == [
        "Admin:portal-server-logs"
    ]
    assert identities["administrator"]["credentials"][0]["accessKey"] == "<S3_ADMIN_ACCESS_KEY>"
    assert services["s3"]["configs"] == [
        {"source": "s3-identities", "target": "/etc/seaweedfs/identities.json"}
    ]
    assert "-s3.config=/etc/seaweedfs/identities.json" in services["s3"]["command"]
    # The administrator's keys reach the S3 server and the bucket job, never a portal process.
    for name in APP_SERVICES:
        assert not interpolated_names(services[name]["environment"]) & {
            "S3_ADMIN_ACCESS_KEY",
            "S3_ADMIN_SECRET_KEY",
        }
    assert services["createbuckets"]["environment"]["AWS_ACCESS_KEY_ID"].startswith("${S3_ADMIN_ACCESS_KEY")
    # The job makes the buckets the identities name.
    assert (
        services["createbuckets"]["environment"]["EXPORT_BUCKET"]
        == "${AWS_STORAGE_BUCKET_NAME:-portal-exports}"
    )
    assert (
        services["createbuckets"]["environment"]["LOG_BUCKET"] == "${SERVER_LOGS_BUCKET:-portal-server-logs}"
    )


def test_the_s3_server_has_a_key_to_encrypt_exports_at_rest(services: dict[str, dict[str, Any]]) -> None:
    # The portal writes with ServerSideEncryption=AES256; SeaweedFS turns SSE-S3 off without a key.
    assert services["s3"]["environment"]["WEED_S3_SSE_KEY"] == "${S3_SSE_KEY:?set S3_SSE_KEY}"


def test_the_s3_server_runs_through_its_images_entrypoint(services: dict[str, dict[str, Any]]) -> None:
    # The image's entrypoint drops root and sets the single-node defaults (uncapped volumes).
    assert "entrypoint" not in services["s3"]
    assert services["s3"]["command"][:1] == ["server"]


def test_download_links_are_signed_for_the_published_s3_port(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    public = re.fullmatch(
        r"\$\{AWS_S3_PUBLIC_ENDPOINT_URL:-(.*)\}", compose["x-portal-env"]["AWS_S3_PUBLIC_ENDPOINT_URL"]
    )
    assert public, "AWS_S3_PUBLIC_ENDPOINT_URL needs a default a browser on this machine reaches"
    assert public.group(1) == "http://localhost:9000"
    assert "127.0.0.1:9000:9000" in services["s3"]["ports"]
    # The address the portal writes to is one only the containers resolve.
    assert compose["x-portal-env"]["AWS_S3_ENDPOINT_URL"] != public.group(1)


def test_the_first_employee_command_is_documented_and_exists() -> None:
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("\nname:", 1)[0]
    assert "python manage.py create_staff" in header
    assert "two-factor" in header
    assert (ROOT / "portal" / "management" / "commands" / "create_staff.py").exists()


# --- Processes -----------------------------------------------------------------------------------


def test_exactly_one_beat_runs(services: dict[str, dict[str, Any]]) -> None:
    beats = [name for name, service in services.items() if "beat" in words(service.get("command"))]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["beat"].get("scale", 1) == 1
    for name, service in services.items():
        command = words(service.get("command"))
        assert "-B" not in command and "--beat" not in command, f"{name} embeds a second beat"


def test_worker_and_beat_run_the_portal_celery_app(services: dict[str, dict[str, Any]]) -> None:
    assert words(services["worker"]["command"])[:4] == ["celery", "-A", "portal", "worker"]
    assert words(services["beat"]["command"])[:4] == ["celery", "-A", "portal", "beat"]


def test_web_serves_the_image_command_gunicorn(services: dict[str, dict[str, Any]]) -> None:
    command = words(services["web"].get("command"))
    assert not command or command[0] == "gunicorn"


def test_service_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    images = {services[name]["image"] for name in (*APP_SERVICES, "createbuckets")}
    assert len(images) == 1, f"portal services run different images: {images}"
    assert all(services[name]["build"] == "." for name in APP_SERVICES)


# --- Environment ---------------------------------------------------------------------------------


def test_portal_processes_share_one_environment_anchor(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    anchor = compose["x-portal-env"]
    for name in APP_SERVICES:
        # PyYAML builds an alias as the very object its anchor made: identity means the same anchor.
        assert services[name]["environment"] is anchor, f"{name} does not use *portal-env"


def test_portal_environment_is_production_shaped(compose: dict[str, Any]) -> None:
    environment = compose["x-portal-env"]
    required = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SECRET_KEY",
        "ALLOWED_HOSTS",
        "AWS_STORAGE_BUCKET_NAME",
        "AWS_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_S3_REGION_NAME",
        "EMAIL_URL",
        "DEBUG",
    }
    assert required <= environment.keys(), f"missing: {sorted(required - environment.keys())}"
    assert environment["DEBUG"] == "0"
    assert environment["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:?set DJANGO_SECRET_KEY}"
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    assert environment["AWS_S3_ENDPOINT_URL"] == "http://s3:9000"
    # The web healthcheck asks for http://localhost:8000/healthz; Django must accept that host.
    default_hosts = re.fullmatch(r"\$\{ALLOWED_HOSTS:-(.*)\}", environment["ALLOWED_HOSTS"])
    assert default_hosts and "localhost" in default_hosts.group(1).split(",")


def test_portal_environment_names_are_read_by_the_portal(compose: dict[str, Any]) -> None:
    known = settings_variables() | BOTO3_VARIABLES
    unknown = set(compose["x-portal-env"]) - known
    assert not unknown, f"x-portal-env sets variables nothing reads (typo?): {sorted(unknown)}"


def test_secrets_have_no_default_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert all(use.startswith(":?") for use in uses), f"{name} must be required (${{{name}:?...}})"


def test_every_compose_variable_is_in_env_example(compose: dict[str, Any]) -> None:
    used = set(compose["x-portal-env"]) | interpolated_names(compose)
    assert {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "PORT"} <= used  # the scan sees interpolations
    missing = used - env_example_variables()
    assert not missing, f".env.example does not document: {sorted(missing)}"


# --- .env.example --------------------------------------------------------------------------------


def test_env_example_documents_every_setting() -> None:
    read = settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= read  # the AST scan finds them
    missing = (read | {"PORT"}) - env_example_variables()
    assert not missing, (
        f"portal/settings.py reads variables .env.example does not document: {sorted(missing)}"
    )


def test_env_example_explains_every_variable() -> None:
    prose = "\n".join(line for line in env_example_lines() if not ENV_ASSIGNMENT.match(line))
    for name in env_example_variables():
        assert re.search(rf"^# {name} \w", prose, re.MULTILINE), f"no sentence explains {name}"


def test_env_example_changes_nothing_until_uncommented() -> None:
    # `make run` starts embedded servers only while DATABASE_URL and REDIS_URL are unset.
    active = [line for line in env_example_lines() if re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=", line)]
    assert not active, f"uncommented assignments in .env.example: {active}"


def test_env_example_shows_the_socket_form_of_database_url() -> None:
    assert "# DATABASE_URL=postgres://postgres@/portal?host=/run/postgresql" in env_example_lines()


def test_env_example_leaves_room_for_the_processors() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "Processors (Zendesk, Google Analytics, S3 server logs)" in text


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_dockerfile_builds_the_production_image() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.12-slim")
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    # The uv that writes uv.lock reads it: the Makefile's UV_VERSION is the Dockerfile's.
    assert any("pip install" in run and '"uv==${UV_VERSION}"' in run.split() for run in runs)
    makefile_uv = re.search(r"^UV_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_uv and ("ARG", f"UV_VERSION={makefile_uv.group(1)}") in instructions
    # The lock as it is (refused when stale), runtime packages only (tests/portal/test_dependencies.py).
    assert any("uv sync --locked --no-default-groups" in run for run in runs)
    assert not any("--frozen" in run for run in runs)
    # Dependencies are installed from the lock file before the app is copied in (layer caching).
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert copies[0] == "pyproject.toml uv.lock ./"
    assert keywords.index("COPY") < keywords.index("RUN", keywords.index("COPY"))
    assert any("manage.py collectstatic --noinput" in run for run in runs)
    assert ("EXPOSE", "8000") in instructions


def test_dockerfile_keeps_no_secret_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions()
    for keyword, rest in instructions:
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert "DJANGO_SECRET_KEY" not in rest, "the build-time key must not stay in the image"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_runs_gunicorn_by_default() -> None:
    commands = [rest for keyword, rest in dockerfile_instructions() if keyword == "CMD"]
    assert len(commands) == 1
    command = json.loads(commands[0])
    assert command[:2] == ["gunicorn", "portal.wsgi:application"]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    assert command[command.index("--workers") + 1] == "2"


ACCESS_LOG_OPTIONS = ("--access-logfile", "--access-log-format", "--log-config")


def test_gunicorns_access_log_is_off_in_the_image() -> None:
    # It wrote every query string as sent and the proxy's address; the portal logs each request
    # itself, scrubbed (portal/logs.py), so gunicorn's default (no access log) stays.
    [command] = [json.loads(rest) for keyword, rest in dockerfile_instructions() if keyword == "CMD"]
    assert not [word for word in command if word.startswith(ACCESS_LOG_OPTIONS)], command
    assert not [rest for keyword, rest in dockerfile_instructions() if "GUNICORN_CMD_ARGS" in rest]


def test_gunicorns_access_log_stays_off_in_compose(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    web = services["web"]
    assert not [word for word in words(web.get("command")) if word.startswith(ACCESS_LOG_OPTIONS)]
    assert not words(web.get("entrypoint"))
    assert "GUNICORN_CMD_ARGS" not in compose["x-portal-env"]
    assert "GUNICORN_CMD_ARGS" not in (web.get("environment") or {})


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".env", ".data", ".venv", ".git", "staticfiles"} <= ignored
