"""The one way settings read the environment (django-environ).

``required()`` fails loudly at start-up when a variable that has no safe default is
missing, instead of letting the process run half-configured.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(environ.Env().str("MC_VAR_DIR", default=str(BASE_DIR / ".var")))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")


def required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"environment variable {name} must be set")
    return value
