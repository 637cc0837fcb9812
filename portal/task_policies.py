"""Where each Celery task runs and how long it may take: queues, routes, time limits, acks_late and
the broker's visibility timeout, in one table (TASK_POLICIES) that portal/celery.py turns into
Celery's configuration. No Django import here: settings.py checks CELERY_TIME_LIMITS with it.

Invariants:
- Every task of the portal has a policy (tests/portal/test_celery_policies.py walks the registry).
- The broker's visibility timeout is above the longest hard limit, so a running task is never
  handed to a second worker; a dead worker's message comes back after it.
- Only idempotent tasks are acknowledged late and put back when their worker dies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from kombu import Queue as KombuQueue


class Queue(StrEnum):
    """The queues, each served by workers of its own (`make run`, docker-compose.yml), so that a
    customer's export never waits behind a nightly purge and a hung processor call holds only the
    processors' worker, and only until its time limit."""

    DEFAULT = "default"
    PURGES = "purges"
    EXPORTS = "exports"
    PROCESSORS = "processors"


@dataclass(frozen=True)
class TaskPolicy:
    """Where a task runs and how long it may take. `idempotent`: running it twice does no harm (a
    purge is single-flight and catches up, a build is claimed), so its message is acknowledged
    only when it has finished and put back when its worker dies (acks_late,
    reject_on_worker_lost), as Celery's documentation advises for such tasks only."""

    queue: Queue
    hard_limit: int  # seconds: the worker kills the task (SIGKILL of its pool process)
    idempotent: bool = True

    @property
    def soft_limit(self) -> int:
        # SoftTimeLimitExceeded inside the task first, so it can clean up (a build is marked failed
        # and the customer told; a purge's batch rolls back and the next night catches up).
        return self.hard_limit - max(1, min(60, self.hard_limit // 10))


# Every task of the portal. A purge of a large backlog may take longer than an hour: it stops at
# the limit (each batch commits on its own) and the next run goes on. An export of 100,000 rows
# takes seconds (benchmarks/export.py); 30 minutes is a build that will not finish. Processor calls
# wait on rate limits for at most ZENDESK_RATE_LIMIT_WAIT_SECONDS.
TASK_POLICIES: dict[str, TaskPolicy] = {
    "retention.purge": TaskPolicy(Queue.PURGES, hard_limit=3600),
    "access_requests.expire_exports": TaskPolicy(Queue.PURGES, hard_limit=900),
    "access_requests.build_export": TaskPolicy(Queue.EXPORTS, hard_limit=1800),
    "retention.check_processors": TaskPolicy(Queue.PROCESSORS, hard_limit=600),
    "access_requests.reap_builds": TaskPolicy(Queue.DEFAULT, hard_limit=120),
    # An erasure on request runs the purges for one customer, processors included.
    "access_requests.run_erasure": TaskPolicy(Queue.PURGES, hard_limit=900),
    "access_requests.continue_erasures": TaskPolicy(Queue.PURGES, hard_limit=1800),
}
# Anything else (Celery's own tasks) runs on the default queue with this policy.
DEFAULT_POLICY = TaskPolicy(Queue.DEFAULT, hard_limit=300, idempotent=False)


def time_limit_overrides(raw: str) -> dict[str, int]:
    """CELERY_TIME_LIMITS ("exports=900,purges=7200"): a hard limit in seconds per queue, checked."""
    queues = [queue.value for queue in Queue]
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        queue, _, seconds = item.partition("=")
        if queue.strip() not in queues or not seconds.strip().isdigit() or int(seconds) < 2:
            raise ValueError(
                f"CELERY_TIME_LIMITS: {item!r} is not queue=seconds (at least 2) for one of {queues}"
            )
        overrides[queue.strip()] = int(seconds)
    return overrides


def policies(hard_limit_overrides: dict[str, int]) -> dict[str, TaskPolicy]:
    """The policies with CELERY_TIME_LIMITS' per-queue hard limits applied."""
    return {
        name: TaskPolicy(
            policy.queue, hard_limit_overrides.get(policy.queue, policy.hard_limit), policy.idempotent
        )
        for name, policy in TASK_POLICIES.items()
    }


def visibility_timeout(task_policies: dict[str, TaskPolicy]) -> int:
    """Redis hands an unacknowledged message to another worker after this many seconds: above the
    longest hard limit, or a task still running would be started a second time; not much above it,
    or a message of a dead worker waits that long (Redis' default is one hour)."""
    longest = max(policy.hard_limit for policy in task_policies.values())
    return math.ceil(longest * 1.2) + 5


def celery_configuration(hard_limit_overrides: dict[str, int]) -> dict[str, object]:
    task_policies = policies(hard_limit_overrides)
    return {
        "task_queues": [KombuQueue(queue.value) for queue in Queue],
        "task_default_queue": Queue.DEFAULT.value,
        "task_routes": {name: {"queue": policy.queue.value} for name, policy in task_policies.items()},
        "task_annotations": {
            name: {
                "time_limit": policy.hard_limit,
                "soft_time_limit": policy.soft_limit,
                "acks_late": policy.idempotent,
                "reject_on_worker_lost": policy.idempotent,
            }
            for name, policy in task_policies.items()
        },
        "task_time_limit": DEFAULT_POLICY.hard_limit,
        "task_soft_time_limit": DEFAULT_POLICY.soft_limit,
        "task_acks_late": False,
        "broker_transport_options": {"visibility_timeout": visibility_timeout(task_policies)},
    }
