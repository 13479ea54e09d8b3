"""The jobs whose messages a worker's main process holds, published so that the sweep
can re-send them within a minute when that process dies.

Celery's main process takes messages from the broker and hands them to its pool; a
message is acknowledged only when its task has finished (``acks_late``). If the main
process dies, Redis gives its unacknowledged messages back only after the visibility
timeout (an hour), and the pending re-send waits ``PENDING_REQUEUE_AFTER`` (ten
minutes): a bulk message's jobs not yet started, or messages waiting for a free child,
would wait that long.

So the main process writes the job ids of the requests it holds (Celery's
``reserved_requests``: received, not yet finished) into one field of the hash
``{hb}:held``, keyed by its worker id, with the time: at once when a message arrives
(``task_received``, before the pool gets it), and every ``WORKER_HEARTBEAT_INTERVAL``
to keep the time fresh and drop what finished. A wake-up's message names no job: its
task id is written instead (``takes``), the token its take reserves pulled API jobs
under. A field older than ``WORKER_HEARTBEAT_TTL`` belongs to a dead process: the
sweep re-sends those of its jobs that are still pending, frees the pending jobs its
takes reserved for the next wake-up (they would otherwise wait out
``SIMULATION_RESERVATION_LEASE``), and drops the field (``orphans``, ``forget``). A
job delivered twice is safe: the job row is the lock (``claim_job``, or a small job's
write only while it is pending), so when the broker finally gives the old message
back, its delivery finds nothing to do. Only a death between the broker's delivery and
that write (its Redis round trip) leaves a job out; it waits for the pending re-send.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulations import task_names
from simulations.keys_redis import keys_redis

logger = logging.getLogger(__name__)

HELD_KEY = "{hb}:held"


def job_ids_of(requests: Iterable[Any]) -> list[str]:
    """The job ids in Celery requests: one per single-job message, all of a bulk one."""
    ids: list[str] = []
    for request in requests:
        args = request.args or ()
        if request.name == task_names.RUN_SIMULATION and args:
            ids.append(str(args[0]))
        elif request.name == task_names.RUN_SIMULATIONS and args:
            ids.extend(str(job_id) for job_id in args[0])
    return ids


def takes_of(requests: Iterable[Any]) -> list[str]:
    """The task ids of the wake-ups in Celery requests: the tokens of their takes."""
    return [str(request.id) for request in requests if request.name == task_names.RUN_PENDING_JOBS and request.id]


@dataclass(frozen=True)
class Held:
    """What a main process wrote that it holds."""

    jobs: list[str] = field(default_factory=list)  # ids in single and bulk messages
    takes: list[str] = field(default_factory=list)  # wake-ups' task ids


class HeldJobs:
    """The publishing thread of one worker main process."""

    def __init__(self, worker_id: str, *, interval: float):
        self.worker_id = worker_id
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="held-jobs", daemon=True)

    def start(self) -> HeldJobs:
        self._thread.start()
        return self

    def publish(self, *arriving: Any) -> bool:
        """Write what this process holds now, and the requests ``arriving`` (not yet in
        Celery's registry); False (logged) when Redis is unreachable."""
        requests = [*_reserved_requests(), *arriving]
        entry = {"ts": time.time(), "jobs": job_ids_of(requests), "takes": takes_of(requests)}
        try:
            keys_redis().hset(HELD_KEY, self.worker_id, json.dumps(entry))
            return True
        except Exception as exc:  # never take the worker down for this
            logger.warning("held jobs of %s not written: %s", self.worker_id, exc)
            return False

    def stop(self) -> None:
        """A graceful stop: the broker gets the messages back at once, so nothing is orphaned."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            keys_redis().hdel(HELD_KEY, self.worker_id)
        except Exception as exc:
            logger.warning("held jobs of %s not removed: %s", self.worker_id, exc)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.publish()
            except Exception:  # one bad round must not end the thread
                logger.exception("held jobs of %s not published", self.worker_id)
            self._stopped.wait(self.interval)


def _reserved_requests() -> list[Any]:
    """Celery's registry of the requests this main process holds, copied. The consumer
    thread adds to it while the publishing thread reads, and a set that changes while it
    is copied raises: the copy is taken again."""
    from celery.worker import state

    for _ in range(10):
        try:
            return list(state.reserved_requests)
        except RuntimeError:  # changed size during iteration
            continue
    return list(state.reserved_requests)


def orphans(*, older_than: float) -> dict[str, Held]:
    """What every main process that has not written for ``older_than`` seconds (dead)
    held, by its worker id."""
    now = time.time()
    dead: dict[str, Held] = {}
    for worker, raw in keys_redis().hgetall(HELD_KEY).items():
        try:
            entry = json.loads(raw)
            stale = now - float(entry["ts"]) > older_than
            what = Held([str(j) for j in entry["jobs"]], [str(t) for t in entry.get("takes", ())])
        except (ValueError, KeyError, TypeError):
            stale, what = True, Held()  # unreadable: nothing to re-send, drop it
        if stale:
            dead[worker] = what
    return dead


def forget(worker_ids: Iterable[str]) -> None:
    names = list(worker_ids)
    if names:
        keys_redis().hdel(HELD_KEY, *names)
