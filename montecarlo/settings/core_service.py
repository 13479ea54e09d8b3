"""The platform's Core Service: trade histories and funded accounts."""

from __future__ import annotations

from .env import env

CORE_SERVICE_URL = env.str("CORE_SERVICE_URL", default="http://127.0.0.1:28080")
CORE_SERVICE_TOKEN = env.str("CORE_SERVICE_TOKEN", default="")
CORE_SERVICE_CONNECT_TIMEOUT = env.float("CORE_SERVICE_CONNECT_TIMEOUT", default=3.0)
CORE_SERVICE_READ_TIMEOUT = env.float("CORE_SERVICE_READ_TIMEOUT", default=10.0)
CORE_SERVICE_RETRIES = env.int("CORE_SERVICE_RETRIES", default=3)
CORE_SERVICE_BACKOFF = env.float("CORE_SERVICE_BACKOFF", default=0.5)
