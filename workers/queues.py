"""Celery queues, by kind of work: CPU-bound simulations apart from light upkeep."""

from __future__ import annotations

from enum import Enum


class CeleryQueue(str, Enum):
    SIMULATIONS = "simulations"
    MAINTENANCE = "maintenance"
