"""The Celery app and its beat schedule.

Every periodic job of the portal is listed here, in code, and nowhere else: the schedule is reviewed
with the code that runs it, and there is no database table for a staff member to edit by mistake.
Queues, routes and time limits are in portal/task_policies.py (settings.py hands them to Celery).
Run exactly one beat process; the purges are single-flight anyway (an advisory lock per category).

The nightly purges are staggered in the order the categories depend on each other (see
retention/purges/customers.py): correspondence, invoices, the customer account, then contracts
left without a customer. Eligibility is computed from "now", so a night that was missed is caught
up by the next run.
"""

import os
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def keep_the_portals_logging(**kwargs: Any) -> None:
    """Workers log through Django's LOGGING (portal/logs.py: JSON lines, the scrubber, the request
    id), set up when Django starts. A receiver of this signal tells Celery to configure nothing of
    its own: left to itself, a starting worker replaces the root logger's handlers with its plain
    format, which scrubs nothing, and stops task loggers propagating to them."""


def _purge(category: str, *, hour: int, minute: int) -> dict[str, object]:
    return {
        "task": "retention.purge",
        "schedule": crontab(hour=hour, minute=minute),
        "kwargs": {"category": category},
        # A purge that could not start before the next one is due is skipped, not queued twice.
        "options": {"expires": 6 * 3600},
    }


app.conf.beat_schedule = {
    "purge-correspondence": _purge("correspondence", hour=2, minute=0),
    "purge-invoices": _purge("invoices", hour=2, minute=15),
    "purge-customer-account": _purge("customer_account", hour=2, minute=30),
    "purge-contracts": _purge("contracts", hour=2, minute=45),
    "purge-server-logs": _purge("server_logs", hour=3, minute=0),
    "purge-sessions-and-audit": _purge("sessions_and_audit", hour=3, minute=15),
    "purge-erasure-requests": _purge("erasure_requests", hour=3, minute=30),
    # The processors' own settings (Google Analytics' data retention, the S3 lifecycle rule and
    # encryption, the Zendesk token's role) against the data map; drift shows in the admin and on
    # /healthz the same morning.
    "check-processors": {
        "task": "retention.check_processors",
        "schedule": crontab(hour=6, minute=0),
        "options": {"expires": 12 * 3600},
    },
    # Exports go 7 days after they are ready; checked hourly, so none outlives its promise by an hour.
    "expire-access-request-exports": {
        "task": "access_requests.expire_exports",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    # An approved erasure that had to wait (a processor down, a purge running) is tried again.
    "continue-erasures": {
        "task": "access_requests.continue_erasures",
        "schedule": crontab(minute=20),
        "options": {"expires": 50 * 60},
    },
    # A build whose worker died goes back to the queue: no request hangs in "being prepared".
    "reap-access-request-builds": {
        "task": "access_requests.reap_builds",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
}
