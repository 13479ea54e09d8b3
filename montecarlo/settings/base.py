"""Core Django settings: apps, middleware, security."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .env import VAR_DIR, env

# keys that have appeared in this repository: never good enough
PUBLISHED_KEYS = {"dev-only-insecure-key-change-me-0123456789abcdef"}

DEBUG = env.bool("DEBUG", default=False)
# No key is shipped: without DEBUG the service refuses to start on a missing, short or
# published one. The local scripts make one per machine (.var/secret_key, deploy/lib.sh);
# the Helm chart requires one.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and (len(SECRET_KEY) < 32 or SECRET_KEY in PUBLISHED_KEYS):
    raise ImproperlyConfigured(
        "SECRET_KEY must be a secret of 32 characters or more when DEBUG is off"
        " (deploy/*.sh make one for local runs; see .env.example)"
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the app: no CDN
    "django_celery_beat",
    "simulations",
    "workers",
]

MIDDLEWARE = [
    "montecarlo.middleware.HttpMetrics",  # first: it times and counts every answer
    "montecarlo.middleware.RequestId",  # then every line logged for a request carries its id
    "montecarlo.middleware.InternalPathsAnyHost",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Behind a TLS-terminating proxy (the chart's ingress, say): trust its X-Forwarded-Proto,
# redirect plain HTTP, send HSTS, keep cookies on HTTPS. Off by default for local runs;
# the production values are in .env.example, and `manage.py check --deploy` passes with them.
if env.bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]  # probes and scrapes speak plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)

ROOT_URLCONF = "montecarlo.urls"
WSGI_APPLICATION = "montecarlo.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # the image runs collectstatic; locally finders serve
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
