"""Celery wiring only: configuration comes from Django settings (CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")

app = Celery("montecarlo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@setup_logging.connect
def keep_django_logging(**_: Any) -> None:
    """Worker and beat log through Django's LOGGING (montecarlo.log_config), like web
    and bridge: a receiver here stops Celery from installing its own handlers."""
