"""Django REST framework and the OpenAPI schema."""

from __future__ import annotations

from simulations import __version__

from .env import env

REST_FRAMEWORK = {
    # camelCase out; camelCase or snake_case in (djangorestframework-camel-case).
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["simulations.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "simulations.api.errors.exception_handler",
    # API keys per client with scopes (simulations/api/auth.py); the probes are open
    "DEFAULT_AUTHENTICATION_CLASSES": ["simulations.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["simulations.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["simulations.api.auth.ClientRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Monte Carlo risk service",
    "DESCRIPTION": "Resample a trader's history, replay the firm's rules, report the distribution.",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": False,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "simulations.models.JobStatus.choices",
        "WorkerStatusEnum": ["idle", "processing"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
    ],
}

API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
# Requests per client: "<n>/<second|minute|hour|day>", counted in a Redis (not a cluster).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/minute")
# The Redis that counts each client's requests (simulations.api.auth.ClientRateThrottle).
API_THROTTLE_REDIS_URL = env.str(
    "API_THROTTLE_REDIS_URL", default=env.str("REDIS_URL", default="redis://127.0.0.1:26379/0")
)
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The largest request body, answered with a 413 above it. 64 MiB holds a history of
# SIMULATION_MAX_TRADES (1,000,000) dated trades, about 50 bytes each.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("API_MAX_BODY_BYTES", default=64 * 2**20)
# Work a client may queue at the API, in trade samples (paths x horizon x trades per
# unit, what a worker draws: about 1e9 a second on a 2-core machine). A client's own budget in
# the admin or `api_keys create --budget` replaces the default. The system client's
# jobs (Kafka, the daily run, the command line) are not counted against a budget.
API_CLIENT_MAX_QUEUED_SAMPLES = env.int("API_CLIENT_MAX_QUEUED_SAMPLES", default=1_000_000_000_000)
API_BATCH_MAX_SAMPLES = env.int("API_BATCH_MAX_SAMPLES", default=200_000_000_000)
