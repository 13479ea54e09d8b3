"""Logs (``montecarlo.log_config``) and optional error tracking (Sentry)."""

from __future__ import annotations

from montecarlo.log_config import logging_config

from .env import env

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL, levels=env.str("LOG_LEVELS", default=""))

# Errors of web requests and Celery tasks go to Sentry when a DSN is set; without one
# sentry-sdk is never imported, so nothing is sent anywhere.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from montecarlo.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
