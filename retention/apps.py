from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate
from django.utils.translation import gettext_lazy as _


def _install_retention_functions(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    from retention.db import functions_sql
    from retention.guards import install_hold_guards
    from retention.windows import RetentionPeriods

    with connections[using].cursor() as cursor:
        cursor.execute(functions_sql(RetentionPeriods.from_settings()))
    install_hold_guards(connections[using])


def _validate_retention_periods(sender: AppConfig, **kwargs: Any) -> None:
    """Before `migrate` changes anything: the periods the triggers will carry must be legal."""
    from retention.windows import RetentionPeriods

    RetentionPeriods.from_settings()


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = _("Retention and deletion")

    def ready(self) -> None:
        from retention import checks  # noqa: F401  (registers the data-map system check)

        # The SQL functions carry the periods in settings; refresh them after every migrate.
        pre_migrate.connect(_validate_retention_periods, sender=self, dispatch_uid="retention_periods")
        post_migrate.connect(_install_retention_functions, sender=self, dispatch_uid="retention_functions")
