"""Sentry for web requests and Celery tasks, imported only when ``SENTRY_DSN`` is set."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from simulations import __version__
from simulations.log_context import current_request_id


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=f"montecarlo@{__version__}",
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # no API keys, cookies or client addresses leave the service
        before_send=_tag_request_id,
    )


def _tag_request_id(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """An error found in Sentry leads to its request's log lines."""
    if request_id := current_request_id():
        event.setdefault("tags", {})["request_id"] = request_id
    return event
