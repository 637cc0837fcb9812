"""The Celery app and its beat schedule.

Every periodic job of the portal is listed here, in code, and nowhere else: the schedule is reviewed
with the code that runs it, and there is no database table for a staff member to edit by mistake.
Run exactly one beat process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {}
