"""What waits on the real Redis broker's queue, for tests that check a job was sent."""

from __future__ import annotations

import base64
import json

import redis
from django.conf import settings

from simulations.services.dispatch import flush_dispatcher


def queued_job_ids() -> list[str]:
    """Job ids of the run_simulation(s) messages waiting on the real broker's queue,
    once this process's dispatcher has sent what it holds."""
    assert flush_dispatcher(), "the dispatcher did not send its jobs"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ids = []
    for raw in broker.lrange("simulations", 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        if message["headers"]["task"] == "montecarlo.run_simulations":
            ids.extend(args[0])  # a batch of jobs in one message
        else:
            ids.append(args[0])
    return ids
