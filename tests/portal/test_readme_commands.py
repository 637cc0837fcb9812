"""Every command README.md shows works as written.

The commands are read from the README's shell blocks, not listed here: a command added to the
README without a way to run it here fails `test_every_command_the_readme_shows_is_run_here`.
`make run` is started for real on a data directory of the test's own (embedded PostgreSQL and
Redis), with `make manage` run against it while it runs and after it stopped; the operator
commands also run against DATABASE_URL / REDIS_URL, as in production.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import database_url, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
SHELL_BLOCK = re.compile(r"^```(?:sh|shell|bash|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def readme_commands() -> list[str]:
    """The command lines of README.md's shell blocks: comments stripped, and blocks that only set
    variables (the production environment) left out."""
    commands = []
    for block in SHELL_BLOCK.findall((BASE_DIR / "README.md").read_text()):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and not all(ASSIGNMENT.match(word) for word in words):
                commands.append(shlex.join(words))
    return commands


def make_target(command: str) -> str:
    words = [word for word in shlex.split(command) if not ASSIGNMENT.match(word)]
    assert words[0] == "make", f"{command!r}: only make targets are documented for operators"
    return words[1]


def the_callers_environment(**changes: str | None) -> dict[str, str]:
    """The suite's environment with `changes` applied (None removes a variable), as a person's
    shell would have it."""
    environment = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return environment


def run_shell(command: str, environment: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def manage_commands() -> list[str]:
    return [command for command in readme_commands() if make_target(command) == "manage"]


def test_every_command_the_readme_shows_is_run_here() -> None:
    commands = readme_commands()
    assert {"make run", "make test"} <= set(commands)
    assert len(manage_commands()) >= 3
    for command in commands:
        assert make_target(command) in {"run", "test", "manage"}, f"{command!r} is run by no test"


def test_make_test_is_what_this_suite_runs() -> None:
    # `make test` cannot run itself from inside the suite; what it would run is this suite.
    dry_run = run_shell("make -n test", the_callers_environment())
    assert ".venv/bin/python -m portal.launch test" in dry_run
    assert "ruff" in dry_run and "mypy" in dry_run


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", manage_commands())
def test_an_operator_command_runs_against_database_url(command: str) -> None:
    output = run_shell(command, the_callers_environment(DATABASE_URL=database_url()))
    assert "using DATABASE_URL from the environment" in output
    assert "Traceback" not in output


def _wait_for(path: str, port: int, process: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run ended before it answered"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"make run did not answer on {path} within {timeout} s")


def test_make_run_serves_refuses_a_second_instance_and_make_manage_joins_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    # A person's shell on a development checkout: no servers named, no DEBUG, no secret key.
    person = the_callers_environment(
        PORTAL_DATA_DIR=str(data), DATABASE_URL=None, REDIS_URL=None, DEBUG=None, DJANGO_SECRET_KEY=None
    )
    first = subprocess.Popen(
        ["bash", "-c", f"PORT={port} make run"],
        cwd=BASE_DIR,
        env=person,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for("/healthz", port, first)
        published = (data / "embedded.env").read_text()

        second = subprocess.run(
            ["bash", "-c", f"PORT={free_port()} make run"],
            cwd=BASE_DIR,
            env=person,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert second.returncode != 0
        refusals = [line for line in second.stderr.splitlines() if line.startswith("[portal]")]
        assert len(refusals) == 1 and "already running" in refusals[0], second.stderr
        assert "[portal]" not in second.stdout  # nothing started, migrated or seeded
        assert (data / "embedded.env").read_text() == published

        for command in manage_commands():
            if "--dry-run" in command:
                output = run_shell(command, person)
                assert "joining the embedded PostgreSQL" in output
                assert "nothing deleted (dry run)" in output
        assert (data / "embedded.env").read_text() == published
        _wait_for("/healthz", port, first)
    finally:
        # Ctrl-C to the portal's launcher: its pid is what the instance lock holds.
        os.kill(int((data / "run.lock").read_text()), signal.SIGINT)
        output, _ = first.communicate(timeout=120)
    assert first.returncode == 0, output[-4000:]
    assert not (data / "embedded.env").exists()

    # Stopped: `make manage` starts the servers for the command, and they stop with it.
    output = run_shell(manage_commands()[0], person)
    assert "starting the embedded PostgreSQL" in output
    assert "nothing deleted (dry run)" in output
    assert not (data / "postgres" / "postmaster.pid").exists()
