"""What waits on the real Redis broker's queue, for tests that check a job was sent."""

from __future__ import annotations

import base64
import json

import redis
from django.conf import settings

from simulations.services.dispatch import flush_dispatcher


def queued_messages() -> list[list[str]]:
    """The job ids of each run_simulation(s) message waiting on the real broker's
    queue, oldest first (read as it is: nothing is flushed)."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = []
    for raw in reversed(broker.lrange("simulations", 0, -1)):  # LPUSHed: the oldest is last
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        batch = message["headers"]["task"] == "montecarlo.run_simulations"
        messages.append(list(args[0]) if batch else [args[0]])  # a batch of jobs in one message
    return messages


def queued_job_ids() -> list[str]:
    """Job ids of the run_simulation(s) messages waiting on the real broker's queue,
    newest message first, once this process's dispatcher has sent what it holds."""
    assert flush_dispatcher(), "the dispatcher did not send its jobs"
    return [job_id for message in reversed(queued_messages()) for job_id in message]
