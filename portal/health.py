"""`/healthz`: 200 when PostgreSQL and Redis answer, 503 naming what is down.

Load balancers poll it every second or so from every node, so a probe costs a `SELECT 1` on the
worker's own persistent database connection and a PING on a pooled Redis connection: the library's
checks open a new PostgreSQL connection (a backend process forked and torn down) and a new Redis
connection for every probe, which cost several times the page itself (benchmarks/web.py).

With a processor connector configured, it also reports the processors' latest check against the
privacy policy (drift, a check that failed, or no check for two days) as a *warning*: the entry
names what differs, but the status stays 200. Drift is a policy mismatch for staff to fix, not an
outage; a load balancer that took the portal out of service for it would stop customers reaching
their data and fix nothing.

Who learns what: anyone gets the status alone ({"status": "ok"} or {"status": "unavailable"}, with
200 or 503), in every format they ask for. Each check's result (the Redis host and database, the
processors' drift) is shown only to staff signed in with two-factor authentication, or to a caller
that sends `Authorization: Bearer <HEALTHZ_TOKEN>` when a token is configured.
"""

import dataclasses
import functools
import hmac
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from portal.security import is_staff_account, session_used_second_factor
from processors.selectors import processor_problems


def _redis_client() -> AsyncRedis:
    # Only names the server in the report (`Redis.__repr__`); the probe itself is `_pooled_redis`.
    return AsyncRedis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


@functools.lru_cache(maxsize=4)
def _pooled_redis(url: str) -> SyncRedis:
    """One client, and so one connection pool, per worker process and URL."""
    return SyncRedis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


@dataclasses.dataclass
class PersistentDatabase(Database):
    """The library's `SELECT 1`, run in the request's own thread: on the connection the worker keeps
    open between requests (CONN_MAX_AGE), which `temporary_connection` then leaves open."""

    async def run(self) -> None:
        await sync_to_async(super().run, thread_sensitive=True)()

    def __repr__(self) -> str:
        return f"Database(alias={self.alias!r})"


@dataclasses.dataclass(repr=False)
class PooledRedis(Redis):
    """PING on the worker's pooled connection to the configured Redis."""

    async def run(self) -> None:
        await sync_to_async(self._ping, thread_sensitive=True)()

    def _ping(self) -> None:
        try:
            _pooled_redis(settings.REDIS_URL).ping()
        except (RedisError, OSError) as error:
            raise ServiceUnavailable("Unable to connect to Redis: Connection Error") from error


@dataclasses.dataclass
class ProcessorDrift(HealthCheck):
    """The processors' settings against the privacy policy, from the latest daily check."""

    async def run(self) -> None:
        # In the request's own thread: the checks are read on the request's database connection.
        problems = await sync_to_async(processor_problems, thread_sensitive=True)()
        if problems:
            raise ServiceWarning("; ".join(problems))


class PortalHealthView(HealthCheckView):
    checks = (
        (PersistentDatabase, {"alias": "default"}),
        (PooledRedis, {"client_factory": _redis_client}),
    )

    def get_checks(self) -> Any:
        yield from super().get_checks()
        from processors import registry

        if registry.connectors():
            yield ProcessorDrift()

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        # The library answers 500 when a check fails; a load balancer reads 503 as "this
        # instance cannot serve now", which is what a dead database or broker means. Warnings
        # (processor drift) are reported in the body but leave the status at 200.
        if response.status_code == 500:
            outage = any(
                result.error and not isinstance(result.error, ServiceWarning) for result in self.results
            )
            response.status_code = 503 if outage else 200
        if await sync_to_async(may_see_details, thread_sensitive=True)(request):
            return response
        status = "ok" if response.status_code == 200 else "unavailable"
        return JsonResponse({"status": status}, status=response.status_code)


def may_see_details(request: HttpRequest) -> bool:
    """Staff signed in with two-factor authentication, or a caller with the configured token."""
    token = settings.HEALTHZ_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    user = request.user
    return is_staff_account(user) and session_used_second_factor(request, user)
