# Two commands matter: `make run` starts the portal, `make test` runs the whole suite.
# Both install what they need first (uv, then the locked Python packages), every time, idempotently.

SHELL := /bin/bash
# Any Python 3 that can make a virtual environment; uv then picks Python 3.12 (.python-version).
PYTHON ?= python3
# uv lives in a private tool environment of this checkout, never in the system's Python (which
# PEP 668 systems refuse to pip-install into). Pinned: the lock file is read by the uv that wrote it.
UV_VERSION ?= 0.13.9
UV := .tools/uv/bin/uv
VENV_PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: run manage test lint format install system-packages bench-packages migrate seed shell benchmarks clean

## The locked Python packages into .venv; `--locked` fails when uv.lock no longer matches pyproject.toml.
install: $(UV)
	@$(UV) sync --locked --quiet

# A venv of its own under .tools/ (Debian: python3-venv); where venv is missing, a pip --target
# install into the same folder, which PEP 668 allows as well.
$(UV):
	@echo "installing uv $(UV_VERSION) into .tools/uv"
	@rm -rf .tools/uv
	@if $(PYTHON) -m venv .tools/uv >/dev/null 2>&1; then \
		.tools/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	else \
		rm -rf .tools/uv; \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools/uv "uv==$(UV_VERSION)"; \
	fi
	@$(UV) --version >/dev/null

## Start embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), migrate, load demo
## data, then serve on http://127.0.0.1:$${PORT:-8000} with a Celery worker and beat. Ctrl-C stops all.
run: install
	$(VENV_PYTHON) -m portal.launch run

## Any management command, against the servers of `make run` (joined while it runs, started for
## the command when it does not) or DATABASE_URL / REDIS_URL when set:
##   make manage ARGS="purge --dry-run --as-of 2032-01-01"
manage: install
	$(VENV_PYTHON) -m portal.launch manage -- $(ARGS)

## Debian packages the suite needs: Chromium for the browser tests (Playwright drives Debian's
## build; it never downloads its own) and wrk for the page benchmark (its smoke test runs it tiny).
## Installed only when missing.
system-packages: bench-packages
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

bench-packages:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing Debian's wrk for the page benchmark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

## Lint, type-check, then the whole suite against real PostgreSQL and Redis (embedded unless set).
test: install system-packages lint
	$(VENV_PYTHON) -m portal.launch test -- $(PYTEST_ARGS)

lint: install
	$(VENV_PYTHON) -m ruff format --check .
	$(VENV_PYTHON) -m ruff check .
	# The allowed import directions between the apps and inside access_requests ([tool.importlinter]).
	.venv/bin/lint-imports --no-cache
	# Declared dependencies ([tool.deptry]): the portal's own code first; then the tests and benchmarks,
	# which may import the dev group (DEP004) but nothing undeclared or only transitive.
	.venv/bin/deptry .
	.venv/bin/deptry tests benchmarks --exclude '\.venv|\.tools' --extend-exclude '\.data' --ignore DEP002,DEP004
	# The django-stubs plugin imports the settings, which need a secret key when DEBUG is off.
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-type-checking-only-not-a-secret}" $(VENV_PYTHON) -m mypy .

format: install
	$(VENV_PYTHON) -m ruff format .
	$(VENV_PYTHON) -m ruff check --fix .

benchmarks: install bench-packages
	$(VENV_PYTHON) -m portal.launch bench

clean:
	rm -rf .venv .tools .data .mypy_cache .ruff_cache staticfiles
