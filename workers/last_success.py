"""When each scheduled task last finished without error, kept in the keys Redis (one
hash) so the fact outlives the worker process that ran it: a worker restarted after
the daily run still reports it, and the alerts on a missing run never fire on a restart.
"""

from __future__ import annotations

import time

from simulations.keys_redis import keys_redis

KEY = "montecarlo:last-success"
SWEEP = "sweep"
DAILY_RUN = "daily_run"


def mark(task: str) -> None:
    keys_redis().hset(KEY, task, time.time())


def read() -> dict[str, float]:
    return {task: float(at) for task, at in keys_redis().hgetall(KEY).items()}
