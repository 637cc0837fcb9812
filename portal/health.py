"""`/healthz`: 200 when PostgreSQL and Redis answer, 503 naming what is down.

With a processor connector configured, it also reports the processors' latest check against the
privacy policy (drift, a check that failed, or no check for two days) as a *warning*: the entry
names what differs, but the status stays 200. Drift is a policy mismatch for staff to fix, not an
outage; a load balancer that took the portal out of service for it would stop customers reaching
their data and fix nothing.
"""

import dataclasses
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceWarning
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis

from processors.selectors import processor_problems


def _redis_client() -> AsyncRedis:
    return AsyncRedis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


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
        (Database, {"alias": "default"}),
        (Redis, {"client_factory": _redis_client}),
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
        return response
