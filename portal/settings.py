"""Settings for the customer-data portal.

One file for every environment: production differs from a developer's machine only by environment
variables (see `.env.example`). `make run` starts embedded PostgreSQL and Redis and writes their
addresses to `.data/embedded.env`, which is read here when the variables are not set.
"""

from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()
for env_file in (BASE_DIR / ".env", DATA_DIR / "embedded.env"):
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
    "django.contrib.admin",
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
    "access_requests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
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
            ],
        },
    },
]

# Databases and cache. Persistent connections: a page with three indexed queries serves ~4x the
# requests per second with CONN_MAX_AGE set (DESIGN.md, "What is known about speed").
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/portal")}
# A socket directory may arrive URL-encoded (postgres://%2Frun%2Fpostgresql/portal).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
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
CELERY_TASK_ACKS_LATE = True
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

# --- Server logs (retention/server_logs.py) ----------------------------------------------------------
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
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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

# --- Processors (Zendesk, Google Analytics, S3) -----------------------------------------------
# Connectors in retention/processors/: each is off until its variables are set (see .env.example),
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

# --- Security: sessions, rate limits, headers ---------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Retention periods (retention/windows.py, RetentionPeriods): the privacy policy's and the
# Accounting Act's defaults; override single keys here, never in code.
RETENTION = {
    key: env.int(f"RETENTION_{key.upper()}")
    for key in (
        "customer_data_months",
        "accounting_years",
        "server_log_months",
        "export_days",
        "audit_months",
    )
    if env.str(f"RETENTION_{key.upper()}", default="")
}

# The company behind the portal, shown on pages and in exports.
COMPANY_NAME = env.str("COMPANY_NAME", default="WP Hosting AS")
