"""Prometheus: set PROMETHEUS_MULTIPROC_DIR when several processes serve metrics."""

from __future__ import annotations

from .env import env

PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
