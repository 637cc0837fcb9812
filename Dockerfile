# syntax=docker/dockerfile:1
# The portal's production image: web (gunicorn + whitenoise), Celery worker and beat all run it.
# docker-compose.yml builds it once and gives each service its command.

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The uv that writes uv.lock (UV_VERSION in the Makefile) reads it here too.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
# Only [project].dependencies: the dev, embedded and demo groups (tests and linters, the embedded
# servers of `make run`, Faker) are all default groups, and --no-default-groups leaves every one out.
# --locked fails the build when uv.lock no longer matches pyproject.toml.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-default-groups --no-install-project \
    && rm -rf /root/.cache

COPY . .

# Static files are collected into the image; whitenoise serves them (compressed) from there.
# Settings refuse to load without DJANGO_SECRET_KEY when DEBUG is off, so this one command gets a
# throwaway key; it is not stored in the image and nothing signed with it outlives the build.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-real-key python manage.py collectstatic --noinput

# An unprivileged user owns only what the running portal may write: .data (beat's schedule file;
# media when no bucket is configured).
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin portal \
    && mkdir -p /app/.data \
    && chown portal:portal /app/.data
USER 10001:10001

EXPOSE 8000

# No --access-logfile: gunicorn's access log is off (its default). It would write every query string
# as sent (e-mail addresses in searches) and the proxy's address for the client's; the portal logs
# each request itself, scrubbed, as a JSON line with the client's address (portal/logs.py).
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
