"""`/healthz`: 200 when PostgreSQL and Redis answer, 503 naming what is down."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis


def _redis_client() -> AsyncRedis:
    return AsyncRedis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


class PortalHealthView(HealthCheckView):
    checks = (
        (Database, {"alias": "default"}),
        (Redis, {"client_factory": _redis_client}),
    )

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        # The library answers 500 when a check fails; a load balancer reads 503 as "this
        # instance cannot serve now", which is what a dead database or broker means.
        if response.status_code == 500:
            response.status_code = 503
        return response
