"""The privacy policy as the data map states it, with how and when each promise was last verified:
what the public page /privacy/ renders. Every number on the page comes from here, and here from
the data map and `RetentionPeriods`, the same source the purges and checks enforce."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from retention import data_map
from retention.models import PurgeRun
from retention.windows import RetentionPeriods, longest_months_in_days


@dataclass(frozen=True)
class Verification:
    """One way a promise is enforced, and when that last happened."""

    how: str
    last: datetime | None
    ok: bool = True  # False: the last check found drift, or could not be made


@dataclass(frozen=True)
class PolicySection:
    category: data_map.Category
    processors: list[data_map.Processor]
    verifications: list[Verification] = field(default_factory=list)


# The page is public and anyone may load it, but what it says changes about once a night (when a
# purge or a processor check ran): the views keep its rendered policy in the shared cache for a
# few minutes, one entry per language and configuration. A purge run that ends forgets them at once
# (`forget_rendered_policy`); a new processor check shows within RENDERED_POLICY_SECONDS.
RENDERED_POLICY_SECONDS = 300


def rendered_policy_key(language: str) -> str:
    """The cache key of the policy as rendered in `language` with the periods and processors
    configured now (a changed setting renders anew)."""
    from processors import registry

    configuration = (
        RetentionPeriods.from_settings(),
        tuple(connector.key for connector in registry.connectors()),
        settings.SERVER_LOGS_BUCKET,
    )
    digest = hashlib.sha256(repr(configuration).encode()).hexdigest()[:16]
    return f"privacy:policy:{language}:{digest}"


def forget_rendered_policy() -> None:
    """A purge run has ended: the next request renders the policy, with its date, anew."""
    cache.delete_many([rendered_policy_key(code) for code, _name in settings.LANGUAGES])


def on_purge_run_saved(sender: Any, instance: PurgeRun, **kwargs: Any) -> None:
    # post_save of PurgeRun (connected in PortalConfig.ready): a run is saved as it ends. PurgeRun
    # is never purged in bulk, so the receiver makes no deletion fetch its rows.
    if instance.status == PurgeRun.Status.FINISHED and not instance.dry_run:
        transaction.on_commit(forget_rendered_policy)


def _latest_purges() -> dict[str, datetime]:
    # One grouped query (index purgerun_category_idx).
    return dict(
        PurgeRun.objects.filter(status=PurgeRun.Status.FINISHED, dry_run=False)
        .values("category")
        .annotate(last=Max("finished_at"))
        .values_list("category", "last")
    )


def privacy_policy() -> list[PolicySection]:
    """Each category of the data map with its processors and its verifications, in the active
    language."""
    from processors import registry
    from processors.selectors import latest_checks
    from retention.services import PURGES

    periods = RetentionPeriods.from_settings()
    purges = _latest_purges()
    configured = registry.connectors()
    checks = latest_checks(connector.key for connector in configured)
    sections = []
    for category in data_map.categories():
        verifications = []
        if category.key in PURGES:
            how = _("The nightly purge deletes what is past the period, and records every deletion.")
            if category.key == "access_request_exports":
                how = _("The hourly expiry deletes each file when its days are up, and records it.")
            verifications.append(Verification(how, purges.get(category.key)))
        if category.key == "server_logs" and settings.SERVER_LOGS_BUCKET:
            days = longest_months_in_days(periods.server_log_months)
            s3_check = checks.get("s3")
            verifications.append(
                Verification(
                    _(
                        "An S3 lifecycle rule expires the logs after %(days)s days (never before the "
                        "%(months)s months are up), even while this portal is down; we check the rule "
                        "every day."
                    )
                    % {"days": days, "months": periods.server_log_months},
                    s3_check.checked_at if s3_check else None,
                    ok=bool(s3_check and s3_check.ok),
                )
            )
        for connector in configured:
            if category.key not in connector.categories or (connector.key, category.key) == (
                "s3",
                "server_logs",
            ):
                continue
            check = checks.get(connector.key)
            verifications.append(
                Verification(
                    _("Every day we compare the settings at %(processor)s with this policy.")
                    % {"processor": connector.name},
                    check.checked_at if check else None,
                    ok=bool(check and check.ok),
                )
            )
            if connector.erases_customers:
                verifications.append(
                    Verification(
                        _("When your data here is deleted, we have %(processor)s delete its copy too.")
                        % {"processor": connector.name},
                        purges.get("correspondence"),
                    )
                )
        sections.append(PolicySection(category, category.processor_list(), verifications))
    return sections
