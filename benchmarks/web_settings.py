"""Settings for benchmarks/web.py only: the portal's own settings (production, as the benchmark's
environment sets them) with a URLconf that adds the two anchor views beside the portal's pages, so
both sides are served by the same gunicorn, the same middleware and the same database."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.web_urls"
