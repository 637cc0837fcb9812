"""Celery as its documentation advises: queues by kind of work, routed in code, time limits on every
task, a visibility timeout above the longest limit, and late acknowledgement for idempotent tasks,
so a dead worker's export is finished by another within minutes, not after an hour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from access_requests.models import AccessRequest
from access_requests.tasks import build_export_task
from customers.models import Customer
from portal import launch
from portal.celery import app
from portal.task_policies import (
    TASK_POLICIES,
    Queue,
    celery_configuration,
    policies,
    time_limit_overrides,
    visibility_timeout,
)
from tests.access_requests.portal_fixtures import make_request
from tests.processes import database_url

BASE_DIR = Path(__file__).resolve().parents[2]


def portal_tasks() -> dict[str, Any]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith(("celery.", "tests."))}


def test_every_task_of_the_portal_has_a_queue_and_time_limits() -> None:
    tasks = portal_tasks()
    assert tasks, "no task registered"
    assert set(tasks) == set(TASK_POLICIES)
    for name, task in tasks.items():
        policy = TASK_POLICIES[name]
        assert app.amqp.router.route({}, name)["queue"].name == policy.queue
        assert 0 < task.soft_time_limit < task.time_limit == policy.hard_limit
        assert task.acks_late is policy.idempotent
        assert task.reject_on_worker_lost is policy.idempotent


def test_an_export_and_a_purge_never_share_a_queue() -> None:
    assert app.amqp.router.route({}, "access_requests.build_export")["queue"].name == Queue.EXPORTS
    assert app.amqp.router.route({}, "retention.purge")["queue"].name == Queue.PURGES
    assert app.amqp.router.route({}, "celery.backend_cleanup")["queue"].name == Queue.DEFAULT


def test_the_broker_hands_back_a_message_after_the_longest_hard_limit_not_after_an_hour() -> None:
    configured = app.conf.broker_transport_options["visibility_timeout"]
    longest = max(policy.hard_limit for policy in TASK_POLICIES.values())
    assert longest < configured < 2 * longest
    shortened = policies({queue.value: 20 for queue in Queue} | {"purges": 30})
    assert 30 < visibility_timeout(shortened) <= 30 * 1.2 + 5


@pytest.mark.parametrize("raw", ["export=60", "purges=1", "purges=soon", "=60"])
def test_a_bad_time_limit_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="CELERY_TIME_LIMITS"):
        time_limit_overrides(raw)


def _compose_worker_queues() -> list[set[str]]:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    queues = []
    for service in compose["services"].values():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "portal", "worker"]:
            queues.append(set(command[command.index("--queues") + 1].split(",")))
    return queues


@pytest.mark.parametrize(
    "worker_queues",
    [
        pytest.param([set(queues) for queues, _ in launch.WORKERS.values()], id="make run"),
        pytest.param(_compose_worker_queues(), id="docker compose"),
    ],
)
def test_every_queue_has_a_worker_and_exports_one_of_their_own(worker_queues: list[set[str]]) -> None:
    assert set().union(*worker_queues) == {queue.value for queue in Queue}
    assert {Queue.EXPORTS.value} in worker_queues
    assert not any(Queue.EXPORTS in queues and Queue.PURGES in queues for queues in worker_queues)


def test_the_settings_hand_celery_the_policies() -> None:
    expected = celery_configuration({})
    assert app.conf.task_routes == expected["task_routes"]
    assert app.conf.task_default_queue == Queue.DEFAULT
    assert app.conf.task_acks_late is False  # only for the tasks that are idempotent


# --- A worker killed mid-build ------------------------------------------------------------------

# Small limits for this test's workers (the production ones are minutes): the broker hands the dead
# worker's message on after the visibility timeout these give.
TEST_TIME_LIMITS = "default=15,purges=15,exports=15,processors=15"
STALE_SECONDS = 2
KOMBU_RESTORE_CADENCE = 10 * 10

# Both workers run this: the first attempt at a build, on whichever worker takes it, stalls once it
# has written its first heartbeat (a build that takes long), so the test can kill that worker
# mid-build; the second attempt runs as in production.
STALLING_WORKER = r"""
import sys, time
from celery.signals import task_prerun

@task_prerun.connect
def stall_the_first_attempt_after_its_first_heartbeat(**kwargs):
    from access_requests.export import archive
    from access_requests.models import AccessRequest
    real_beat = archive.BuildProgress.beat
    def beat(self, percent):
        real_beat(self, percent)
        if AccessRequest.objects.get(pk=self.access_request_id).build_attempts == 1:
            print("stalling mid-build", flush=True)
            time.sleep(3600)
    archive.BuildProgress.beat = beat

from celery.__main__ import main
sys.argv = ["celery", *sys.argv[1:]]
main()
"""


def _start_worker(name: str, queue: str, log: IO[str], environment: dict[str, str]) -> Any:
    return subprocess.Popen(
        [
            sys.executable, "-c", STALLING_WORKER, "-A", "portal", "worker", "--loglevel", "INFO",
            "--hostname", f"{name}@%h", "--queues", queue, "--concurrency", "1",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
        ],
        cwd=BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the kill takes the pool process with it
    )  # fmt: skip


def _wait_until(predicate: Any, *, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s")


def _read(log: IO[str]) -> str:
    log.flush()
    log.seek(0)
    return log.read()


@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_is_killed_mid_build_is_finished_by_another_worker(
    alice: Customer, tmp_path: Path
) -> None:
    queue = f"exports-test-{uuid.uuid4().hex[:12]}"
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_TIME_LIMITS": TEST_TIME_LIMITS,
        "EXPORT_BUILD_STALE_SECONDS": str(STALE_SECONDS),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_FORMAT": "console",
    }
    timeout = visibility_timeout(policies(time_limit_overrides(TEST_TIME_LIMITS)))
    access_request = make_request(alice)

    def status() -> tuple[str, int]:
        access_request.refresh_from_db()
        return access_request.status, access_request.progress

    with tempfile.TemporaryFile("w+") as one_log, tempfile.TemporaryFile("w+") as other_log:
        workers = {
            "one": (_start_worker("one", queue, one_log, environment), one_log),
            "other": (_start_worker("other", queue, other_log, environment), other_log),
        }
        try:
            for _, log in workers.values():
                _wait_until(lambda log=log: "ready." in _read(log), timeout=300, what="a worker's start")
            build_export_task.apply_async(kwargs={"access_request_id": str(access_request.pk)}, queue=queue)
            _wait_until(
                lambda: any("stalling mid-build" in _read(log) for _, log in workers.values()),
                timeout=120,
                what="the first attempt",
            )
            assert status() == (AccessRequest.Status.BUILDING, 1)
            [killed] = [name for name, (_, log) in workers.items() if "stalling mid-build" in _read(log)]
            [survivor] = set(workers) - {killed}
            os.killpg(workers[killed][0].pid, signal.SIGKILL)
            workers[killed][0].wait(timeout=30)
            # Within the visibility timeout, plus kombu's restore cadence (it looks for messages past
            # their timeout on every tenth turn of a 10-second cycle: up to 100 s), plus the build.
            try:
                took = _wait_until(
                    lambda: status()[0] == AccessRequest.Status.READY,
                    timeout=timeout + KOMBU_RESTORE_CADENCE + 60,
                    what="the build",
                )
            except BaseException:
                print(_read(workers[survivor][1])[-6000:])
                raise
            # READY is written before the task returns; its worker says so when it has.
            _wait_until(
                lambda: "succeeded" in _read(workers[survivor][1]), timeout=120, what="the task's end"
            )
        finally:
            for worker, _ in workers.values():
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(timeout=60)
        print(f"\nthe killed export finished on the other worker {took:.1f} s after the kill "
              f"(visibility timeout {timeout} s)")  # fmt: skip
        survivor_log = _read(workers[survivor][1])
        assert "succeeded" in survivor_log and "stalling mid-build" not in survivor_log
    access_request.refresh_from_db()
    assert access_request.build_attempts == 2
    assert access_request.export_name
