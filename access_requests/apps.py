from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessRequestsConfig(AppConfig):
    name = "access_requests"
    verbose_name = _("Access requests")

    def ready(self) -> None:
        # Registers the hourly export expiry with the purges, wherever the purges are run from.
        # Registers the build task, which `export.build.enqueue_build` queues by its name.
        from access_requests import (
            expiry,  # noqa: F401
            tasks,  # noqa: F401
        )
