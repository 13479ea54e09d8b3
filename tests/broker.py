"""What waits on the real Redis broker's queue, for tests that check a job was sent."""

from __future__ import annotations

import base64
import json

import redis
from django.conf import settings

from simulations import task_names
from simulations.services.dispatch import flush_dispatcher


def _queued(task: str | None = None) -> list[tuple[str, list]]:
    """(task name, args) of each message waiting on the real broker's simulations
    queue, oldest first; only ``task``'s if given."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued = []
    for raw in reversed(broker.lrange("simulations", 0, -1)):  # LPUSHed: the oldest is last
        message = json.loads(raw)
        name = message["headers"]["task"]
        if task is None or name == task:
            queued.append((name, json.loads(base64.b64decode(message["body"]))[0]))
    return queued


def queued_messages() -> list[list[str]]:
    """The job ids of each run_simulation(s) message waiting on the real broker's
    queue, oldest first (read as it is: nothing is flushed; wake-ups carry no ids)."""
    messages = []
    for name, args in _queued():
        if name == task_names.RUN_SIMULATIONS:
            messages.append(list(args[0]))  # a batch of jobs in one message
        elif name == task_names.RUN_SIMULATION:
            messages.append([args[0]])
    return messages


def queued_wake_ups() -> int:
    """How many wake-up tasks (run_pending_jobs) wait on the real broker's queue."""
    return len(_queued(task_names.RUN_PENDING_JOBS))


def queued_job_ids() -> list[str]:
    """Job ids of the run_simulation(s) messages waiting on the real broker's queue,
    newest message first, once this process's dispatcher has sent what it holds."""
    assert flush_dispatcher(), "the dispatcher did not send its jobs"
    return [job_id for message in reversed(queued_messages()) for job_id in message]
