"""Celery, tuned for long CPU-bound tasks on a Redis broker.

Why each setting is what it is: the comments, and ``docs/reliability.md``.
"""

from __future__ import annotations

from simulations import task_names
from workers.queues import CeleryQueue

from .env import env

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:26379/0")
# The broker is a plain Redis (Sentinel in production): kombu has no Redis Cluster
# transport (celery/kombu#526), so the cluster only holds our own keys (settings/redis.py).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Results live in PostgreSQL (SimulationJob), never in the Celery result backend.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True

# Hard limit for one simulation; the soft limit gives the task time to fail its job.
CELERY_TASK_TIME_LIMIT = env.int("SIMULATION_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# Redis re-delivers any unacked message older than the visibility timeout, so with
# late acks it must exceed the longest task, with margin: twice the hard limit. It is
# read from three places; the shortest wins when several apps share a broker.
CELERY_VISIBILITY_TIMEOUT = 2 * CELERY_TASK_TIME_LIMIT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 25,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}

# Celery's Django fixup closes every database connection before and after every task
# (celery/celery#9824 reverted honouring CONN_MAX_AGE): a new PostgreSQL connection for
# every small job, about a quarter of a worker's time (py-spy). It spares them for this
# many tasks instead; workers/signals.py then closes them the way Django does around a
# request (``close_old_connections``: older than CONN_MAX_AGE, or broken).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000_000)

# Ack after the task ran, and give the message back when the child dies, so a
# crashed worker's job is re-delivered; the job row's state makes re-runs no-ops.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One reserved task per process: a long simulation must not hold others hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task that can no longer ack after a broker reconnect is cancelled, not orphaned.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Task events feed celery-exporter/Flower, at one to three extra Redis publishes per
# task: 10-20% of the HTTP paths' jobs/s end to end (docs/performance.md), so off unless asked for.
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_TASK_EVENTS", default=False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
CELERY_TASK_TRACK_STARTED = False

CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# CPU-bound simulations apart from light upkeep, so a sweep never waits behind a
# 30-minute simulation; send_task() by name routes through this table too.
CELERY_TASK_DEFAULT_QUEUE = CeleryQueue.SIMULATIONS.value
CELERY_TASK_ROUTES = {
    task_names.RUN_SIMULATION: {"queue": CeleryQueue.SIMULATIONS.value},
    task_names.RUN_SIMULATIONS: {"queue": CeleryQueue.SIMULATIONS.value},
    task_names.RUN_PENDING_JOBS: {"queue": CeleryQueue.SIMULATIONS.value},
    task_names.SWEEP_STALE_JOBS: {"queue": CeleryQueue.MAINTENANCE.value},
    task_names.BUILD_BOOK_REPORTS: {"queue": CeleryQueue.MAINTENANCE.value},
    task_names.SCHEDULE_DAILY_FUNDED_RUNS: {"queue": CeleryQueue.MAINTENANCE.value},
}
