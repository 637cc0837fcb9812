"""Settings for the customer-data portal.

One file for every environment: production differs from a developer's machine only by environment
variables (see `.env.example`). `make run` starts embedded PostgreSQL and Redis and writes their
addresses to `.data/embedded.env`, which is read here when the variables are not set.
"""

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from portal.task_policies import celery_configuration, time_limit_overrides
from retention.windows import RetentionPeriods

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of `make run` (embedded servers' addresses, media, beat's schedule); portal/launch.py
# reads the same variable.
DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR") or BASE_DIR / ".data").resolve()

env = environ.Env()
# `.env` holds a developer's or an operator's own values; the test suite sets its own environment
# (tests/suite_environment.py) and reads only the embedded servers' addresses.
_env_files = [DATA_DIR / "embedded.env"]
if not env.bool("PORTAL_IGNORE_DOTENV", default=False):
    _env_files.insert(0, BASE_DIR / ".env")
for env_file in _env_files:
    if env_file.is_file():
        env.read_env(env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DEBUG is off: "
            "put a long random value in the environment (see .env.example)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "health_check",
    "pgtrigger",
    "portal.apps.PortalConfig",
    "customers",
    "audit",
    "retention",
    "processors",
    "access_requests",
]

MIDDLEWARE = [
    # First, so every log line of the request (and of the tasks it queues) carries its id.
    "portal.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After messages (it tells the user why they were signed out), before anything that uses the user.
    "portal.security.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "portal.security.NoStoreMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.security.StaffTwoFactorMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {% csp_nonce_attr %} (the admin's one inline style) needs the request's nonce.
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Databases and cache. Persistent connections: a page with three indexed queries serves ~4x the
# requests per second with CONN_MAX_AGE set (DESIGN.md, "What is known about speed").
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/portal")}
# A socket directory may arrive URL-encoded (postgres://%2Frun%2Fpostgresql/portal).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
# django-pgtrigger's trigger functions look up "pgtrigger.ignore" in an exception block that is
# costly while the setting is unset (a purge of 500k invoice lines slowed to minutes); starting
# every connection with it set to "ignore nothing" keeps every trigger firing, and fast.
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("options", "-c pgtrigger.ignore={}")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="portal"),
    }
}

# Celery: the broker is the same Redis. The beat schedule lives in code (portal/celery.py).
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
CELERY_TASK_IGNORE_RESULT = True
# Queues, routes, time limits, acks_late and the broker's visibility timeout: portal/celery.py
# (TASK_POLICIES). CELERY_TIME_LIMITS changes the hard limit of a queue's tasks, in seconds
# ("exports=900,purges=7200"); the visibility timeout follows the longest.
try:
    CELERY_TIME_LIMITS = time_limit_overrides(env.str("CELERY_TIME_LIMITS", default=""))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
_celery_policies = celery_configuration(CELERY_TIME_LIMITS)
CELERY_TASK_QUEUES = _celery_policies["task_queues"]
CELERY_TASK_DEFAULT_QUEUE = _celery_policies["task_default_queue"]
CELERY_TASK_ROUTES = _celery_policies["task_routes"]
CELERY_TASK_ANNOTATIONS = _celery_policies["task_annotations"]
CELERY_TASK_TIME_LIMIT = _celery_policies["task_time_limit"]
CELERY_TASK_SOFT_TIME_LIMIT = _celery_policies["task_soft_time_limit"]
CELERY_TASK_ACKS_LATE = _celery_policies["task_acks_late"]
CELERY_BROKER_TRANSPORT_OPTIONS = _celery_policies["broker_transport_options"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "Europe/Oslo"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "nb"
LANGUAGES = [("nb", _("Norwegian Bokmål")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Oslo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=DATA_DIR / "media")
MEDIA_URL = "/media/"

# File storage: local files by default; S3 (encrypted at rest) when a bucket is configured.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="eu-north-1")
# The S3 endpoint as customers' browsers reach it, when it differs from AWS_S3_ENDPOINT_URL (the
# container stack): download links are signed for it (access_requests/storage.py).
AWS_S3_PUBLIC_ENDPOINT_URL = env.str("AWS_S3_PUBLIC_ENDPOINT_URL", default="") or None
if AWS_STORAGE_BUCKET_NAME:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": "AES256", "CacheControl": "no-store"},
        },
    }
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Server logs (retention/server_log_store.py) ----------------------------------------------------------
# Web-server logs are kept 6 months from creation. With a bucket, the nightly purge sweeps the
# objects under SERVER_LOGS_PREFIX and keeps the bucket's lifecycle rule for that prefix; the S3
# client shares the endpoint, region and credentials above. Without one (the embedded default) the
# purge sweeps the files in SERVER_LOGS_DIR.
SERVER_LOGS_BUCKET = env.str("SERVER_LOGS_BUCKET", default="")
SERVER_LOGS_PREFIX = env.str("SERVER_LOGS_PREFIX", default="logs/")
SERVER_LOGS_DIR = Path(env.str("SERVER_LOGS_DIR", default=str(DATA_DIR / "server-logs")))
# --- end of server logs --------------------------------------------------------------------------

# Mail: the console by default, SMTP from EMAIL_URL (smtp+tls://user:password@host:587).
_email = env.email_url("EMAIL_URL", default="consolemail://")
_smtp_options = {
    "host": _email.get("EMAIL_HOST"),
    "port": _email.get("EMAIL_PORT"),
    "username": _email.get("EMAIL_HOST_USER"),
    "password": _email.get("EMAIL_HOST_PASSWORD"),
    "use_tls": _email.get("EMAIL_USE_TLS"),
    "use_ssl": _email.get("EMAIL_USE_SSL"),
}
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {key: value for key, value in _smtp_options.items() if value},
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="personvern@wphosting.example")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Sign-in (django-allauth) -------------------------------------------------------------------
# Customers sign in without a password: they enter their e-mail and receive a one-time code.
# Nobody signs up here: staff create customers, and their sign-in follows from that.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "portal.adapters.PortalAccountAdapter"
# Who gets a code: customers and the contacts staff let in (portal.accounts); allauth has no
# adapter hook for that lookup, so the code-request form is replaced.
ACCOUNT_FORMS = {"request_login_code": "portal.forms.CustomerLoginCodeForm"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 10 * 60
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[WP Hosting] "
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/my-data/"
LOGOUT_REDIRECT_URL = "/"
MFA_TOTP_ISSUER = "WP Hosting"

# --- API (Django REST framework + drf-spectacular) ---------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's parsers with a size limit, and JSON with a depth limit: 400 instead of a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "portal.api_parsers.BoundedJSONParser",
        "portal.api_parsers.BoundedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every API call counts against a limit in the Redis cache (see the Security block).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "20/min", "user": "240/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WP Hosting customer-data portal API",
    "DESCRIPTION": "Access requests (GDPR art. 15) for the signed-in customer, and staff actions on them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Access requests and exports (access_requests app) ----------------------------------------
# The portal's address as customers reach it: e-mails link to its pages with it (never to a file).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# A build with no heartbeat for this long counts as stopped: another worker may take it over, and
# the reaper puts it back in the queue.
EXPORT_BUILD_STALE_SECONDS = env.int("EXPORT_BUILD_STALE_SECONDS", default=600)

# --- Erasure on request (GDPR art. 17, access_requests/erasure.py) ------------------------------
# ERASURE_AUTO_APPROVE: a former customer's confirmed request is carried out at once, without
# waiting for the Privacy officer (legal holds and the Accounting Act still apply).
ERASURE_AUTO_APPROVE = env.bool("ERASURE_AUTO_APPROVE", default=False)
# The key of the fingerprints an erasure leaves (to find her again in a restored backup); by
# default derived from DJANGO_SECRET_KEY. Set it when the secret key may be rotated.
ERASURE_FINGERPRINT_KEY = env.str("ERASURE_FINGERPRINT_KEY", default="")

# --- Processors (Zendesk, Google Analytics, S3) -----------------------------------------------
# Connectors in processors/: each is off until its variables are set (see .env.example),
# and shows in the admin's Processors page why it is on or off. S3 uses the AWS_* and SERVER_LOGS_*
# settings above. The *_BASE_URL / *_ENDPOINT variables point a connector at another server than
# the processor's own (a proxy, or the tests' local fakes); leave them unset in production.
ZENDESK_SUBDOMAIN = env.str("ZENDESK_SUBDOMAIN", default="")
ZENDESK_EMAIL = env.str("ZENDESK_EMAIL", default="")
ZENDESK_API_TOKEN = env.str("ZENDESK_API_TOKEN", default="")
ZENDESK_BASE_URL = env.str("ZENDESK_BASE_URL", default="")
# The longest a Zendesk call waits on 429 Retry-After answers (zenpy's ratelimit budget), and how
# long the purge polls a Zendesk job before leaving it to the next run.
ZENDESK_RATE_LIMIT_WAIT_SECONDS = env.int("ZENDESK_RATE_LIMIT_WAIT_SECONDS", default=120)
ZENDESK_JOB_WAIT_SECONDS = env.int("ZENDESK_JOB_WAIT_SECONDS", default=120)
ZENDESK_JOB_POLL_SECONDS = env.float("ZENDESK_JOB_POLL_SECONDS", default=2.0)
GA_PROPERTY_ID = env.str("GA_PROPERTY_ID", default="")
GA_CREDENTIALS_FILE = env.str("GA_CREDENTIALS_FILE", default="")
GA_API_ENDPOINT = env.str("GA_API_ENDPOINT", default="")
GA_USER_DELETION_ENDPOINT = env.str("GA_USER_DELETION_ENDPOINT", default="https://www.googleapis.com")
GOOGLE_WORKSPACE_CREDENTIALS_FILE = env.str("GOOGLE_WORKSPACE_CREDENTIALS_FILE", default="")
GOOGLE_WORKSPACE_MAILBOXES = [
    address.strip().lower()
    for address in env.list("GOOGLE_WORKSPACE_MAILBOXES", default=[])
    if address.strip()
]
GOOGLE_WORKSPACE_API_ENDPOINT = env.str("GOOGLE_WORKSPACE_API_ENDPOINT", default="")

# --- Security: sessions, rate limits, headers ---------------------------------------------------
# OWASP ASVS 5.0 level 2 where it applies. Staff reach /admin/ through allauth's sign-in and only
# with two-factor authentication; sessions time out; every page carries the security headers and a
# Content-Security-Policy; pages with personal data are never cached. The code is in
# portal/security.py (sessions, two-factor, no-store), portal/logs.py (logging) and
# portal/admin_audit.py (the audit trail of staff in the admin).

# Transport. SECURE_TRANSPORT (default: on unless DEBUG) says the portal is reached over HTTPS only:
# plain http is redirected, cookies are Secure, browsers are told HSTS for a year. `make run` (DEBUG
# on, http://127.0.0.1) leaves it off. BEHIND_TLS_PROXY: a proxy terminates TLS and says so in
# X-Forwarded-Proto, and its X-Forwarded-For gives the client address for the rate limits.
SECURE_TRANSPORT = env.bool("SECURE_TRANSPORT", default=not DEBUG)
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_SSL_REDIRECT = SECURE_TRANSPORT
# The container healthcheck asks http://localhost:8000/healthz from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = SECURE_TRANSPORT
CSRF_COOKIE_SECURE = SECURE_TRANSPORT
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if SECURE_TRANSPORT else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    ALLAUTH_TRUSTED_PROXY_COUNT = 1
# DRF's throttles otherwise trust a client's own X-Forwarded-For, which would let it pick its key.
REST_FRAMEWORK["NUM_PROXIES"] = 1 if BEHIND_TLS_PROXY else 0

# /healthz shows each check's result (the Redis host, the processors' drift) to staff and to callers
# sending `Authorization: Bearer <HEALTHZ_TOKEN>`; everyone else gets the status alone. Unset: no
# token opens the details.
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")

# Headers on every response (SecurityMiddleware, XFrameOptionsMiddleware, Django's CSP middleware).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles only from the portal's own files; the one inline style the admin writes
# carries the request's nonce. `data:` images: the QR code of the authenticator-app setup page.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Sessions live in PostgreSQL (django_session): the nightly purge deletes the expired ones, and
# audit.UserSession, which finds a user's sessions to end them all, goes with them.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Idle timeouts (after the last request) and the absolute one (after signing in), enforced by
# portal.security.SessionLifetimeMiddleware; the session row expires with the absolute one.
SESSION_IDLE_TIMEOUT_STAFF = 30 * 60
SESSION_IDLE_TIMEOUT_CUSTOMER = 2 * 3600
SESSION_ABSOLUTE_TIMEOUT = 12 * 3600
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
# Messages ("a code was sent to <address>") live in the session, in PostgreSQL: the default cookie
# storage is signed but readable, and would carry the address in the browser.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Rate limits on every sign-in path, counted in the Redis cache (CACHES["default"]). Failed password
# or two-factor sign-ins: the 6th within 5 minutes for one address (or one user's second factor) is
# refused, whoever's address it is, and so is an 11th failure within a minute from one address.
# Sign-in codes: 3 requests a minute per address; 3 wrong codes void a code (ACCOUNT_LOGIN_BY_CODE_*).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "request_login_code": "20/m/ip,3/m/key",
    "reauthenticate": "10/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
}
# No "remember me": a session ends when the browser closes, or at the timeouts above.
ACCOUNT_SESSION_REMEMBER = False
# Two-factor authentication for staff: an authenticator app (TOTP) with recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TRUST_ENABLED = False

# Logs: one JSON object a line (portal/logs.py), with the request id; LOG_FORMAT=console prints
# readable lines instead (the default with DEBUG on).
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
# Celery keeps this configuration instead of replacing the root logger's handlers with its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "portal.logs.formatter", "renderer": LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler would print its lines a second time, unformatted.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # The development server's own request lines (`make run`, the live-server tests) hold the
        # query string as sent: the portal's scrubbed `request` line (portal.logs) is the one.
        "django.server": {"level": "CRITICAL"},
        # The S3 client logs request URLs and headers (signatures) at DEBUG.
        "botocore": {"level": "INFO"},
        "boto3": {"level": "INFO"},
        "urllib3": {"level": "INFO"},
    },
}

# Retention periods (retention/windows.py, RetentionPeriods): the privacy policy's and the
# Accounting Act's defaults, overridden by RETENTION_* variables and validated here, once: a value
# the law or the policy forbids stops start-up with ImproperlyConfigured naming the variable.
RETENTION = RetentionPeriods.from_environ(
    {name: value for name, value in env.ENVIRON.items() if name.startswith("RETENTION_")}
)

# The company behind the portal, shown on pages and in exports.
COMPANY_NAME = env.str("COMPANY_NAME", default="WP Hosting AS")
