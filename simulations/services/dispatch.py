"""Sending the API's new jobs to the workers: pulled by wake-ups, or pushed in messages.

Pulled (``SIMULATION_API_PULL``, the default): a message per job costs a worker's main
process more than a small job's simulation (receipt, the held-jobs write, the task's
signals, the ack). So the web sends no job at all, only a wake-up task, and at most
one is in flight: ``wake_workers`` sends it only if it is the one to set ``WAKE_KEY``
(``SET NX``, ``WAKE_TTL``). The one that sets it sends the wake-up
``SIMULATION_DISPATCH_WINDOW_MS`` later, from this process's waker thread: the jobs
committed meanwhile, by any web process, find the key set and join the same take, so
an idle fleet's takes carry several jobs instead of one (a request that brings a
take's worth, ``SIMULATION_TASK_BATCH``, wakes at once). The task deletes the key first
and then takes up to ``SIMULATION_TASK_BATCH`` pending API jobs, oldest first
(``reserve_pending_jobs``: ``FOR UPDATE SKIP LOCKED``, so two wake-ups never take the
same job); a job committed after the delete sets the key again and sends the next
wake-up, one committed before it is seen by the take. A full take wakes another worker
before it runs. When workers are busy, jobs gather behind the one wake-up waiting and
the next take gets many of them.

Nothing is lost: a job is committed before the web wakes anyone. A wake-up lost with its
worker, or with a web process killed inside its window, leaves the key to expire, and
the sweep wakes the workers when API jobs have been pending longer than ``WAKE_TTL``.
A reservation whose worker died is taken again by the redelivered wake-up (its task
id: with its running jobs, which a dead child left behind) or, after
``SIMULATION_RESERVATION_LEASE``, by any take.

Pushed (the Kafka bridge's, the daily run's, the sweep's, and the API's with
``SIMULATION_API_PULL=false``): the job ids go in task messages. The API's are handed to
one dispatcher thread per process, which waits ``SIMULATION_DISPATCH_WINDOW_MS`` after
the first and sends all that came meanwhile with ``enqueue_jobs`` (up to
``SIMULATION_TASK_BATCH`` per message). The request does not wait for the broker.

Nothing is lost that was not already at risk: a job is committed before it is handed
over, so if the process dies inside the window, or the broker refuses, the job stays
pending and beat's sweep sends it once it is ``PENDING_REQUEUE_AFTER`` old (the same
as when the broker refuses a direct send). A window of 0 sends at once, in the
caller's thread, a message per request.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from celery import current_app
from django.conf import settings
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from simulations import log_context, metrics, task_names
from simulations.keys_redis import keys_redis
from simulations.process import PerProcess

logger = logging.getLogger(__name__)

JobId = str | uuid.UUID

WAKE_KEY = "{dispatch}:wake"
# Seconds a wake-up may wait in the queue before the next commit sends another.
WAKE_TTL = 5


def wake_workers() -> bool:
    """Send a wake-up task now unless one is already waiting; True if this call sent it."""
    return _claim_wake_up() and _send_wake_up()


def _claim_wake_up() -> bool:
    """Whether this caller is the one to send the next wake-up: it set ``WAKE_KEY``."""
    try:
        return bool(keys_redis().set(WAKE_KEY, "1", nx=True, ex=WAKE_TTL))
    except RedisError as exc:  # cannot tell whether one is waiting: a spare one takes nothing
        logger.warning("wake-up key not set (%s): waking the workers anyway", exc)
        return True


def _send_wake_up() -> bool:
    try:
        current_app.send_task(task_names.RUN_PENDING_JOBS)
    except KombuOperationalError as exc:
        _forget_wake_up()  # the next commit tries again; meanwhile the sweep wakes them
        metrics.ENQUEUE_FAILURES.inc()
        logger.warning("broker refused a wake-up, the API's jobs wait for the next one or the sweep: %s", exc)
        return False
    return True


def woken() -> None:
    """A wake-up task starts: what is committed from now on sends the next one."""
    _forget_wake_up()


def _forget_wake_up() -> None:
    try:
        keys_redis().delete(WAKE_KEY)
    except RedisError as exc:  # the key expires within WAKE_TTL
        logger.warning("wake-up key not deleted: %s", exc)


def enqueue_job(*, job_id: JobId) -> None:
    """Send the job to the simulation queue (called after the creating transaction commits)."""
    current_app.send_task(task_names.RUN_SIMULATION, args=(str(job_id),))


def enqueue_jobs(job_ids: Iterable[JobId]) -> None:
    """Send many jobs (a bulk intake's burst) over one broker connection, up to
    ``SIMULATION_TASK_BATCH`` per message: a worker then loads their rows in one query
    and writes their results together instead of paying a task's overhead per job."""
    ids = [str(job_id) for job_id in job_ids]
    size = max(1, settings.SIMULATION_TASK_BATCH)
    with current_app.producer_or_acquire() as producer:
        for lo in range(0, len(ids), size):
            chunk = ids[lo : lo + size]
            if len(chunk) == 1:
                current_app.send_task(task_names.RUN_SIMULATION, args=(chunk[0],), producer=producer)
            else:
                current_app.send_task(task_names.RUN_SIMULATIONS, args=(chunk,), producer=producer)


def send_or_leave_for_sweep(job_ids: Sequence[JobId]) -> None:
    """Send committed jobs to the queue; if the broker cannot take them, say so and
    leave them pending, and beat's sweep sends them once they are
    ``PENDING_REQUEUE_AFTER`` seconds old. For the API's create calls: the job is
    recorded, so the client gets it (pending), not an error that invites a retry
    creating the same simulation twice. (The Kafka bridge lets the error stop the
    batch instead: its redelivery re-sends at once.)"""
    try:
        enqueue_jobs(job_ids)
    except KombuOperationalError as exc:
        metrics.ENQUEUE_FAILURES.inc(len(job_ids))
        logger.warning(
            "broker refused %d new job(s), left pending for the sweep (%s): %s",
            len(job_ids),
            exc,
            ", ".join(str(j) for j in job_ids[:5]),
        )


class Dispatcher:
    def __init__(self, *, window_ms: int, send: Callable[[Sequence[JobId]], None] = send_or_leave_for_sweep):
        self.window = window_ms / 1000.0
        self._send = send
        self._waiting: list[JobId] = []
        self._request_id = ""  # of the first job waiting: the message's, as a direct send's would be
        self._first_at = 0.0
        self._in_flight = 0  # ids taken by the thread, not yet sent
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, job_ids: Sequence[JobId]) -> None:
        """Send these committed jobs within the window (at once, here, with a window of 0)."""
        if not job_ids:
            return
        if self.window <= 0:
            self._send(job_ids)
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-dispatcher", daemon=True)
                self._thread.start()
            if not self._waiting:
                self._first_at = time.monotonic()
                self._request_id = log_context.current_request_id()
            self._waiting.extend(job_ids)
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every job submitted so far has been sent (or refused); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._first_at = 0.0  # what waits goes now
            self._cond.notify_all()
            while self._waiting or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting:
                    self._cond.wait()
                while (remaining := self._first_at + self.window - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                batch, self._waiting = self._waiting, []
                self._in_flight, request_id = len(batch), self._request_id
            try:
                # the task header carries the first job's request id; each job's own lines
                # in the worker carry its own (the job's row keeps it)
                with log_context.bound_contextvars(request_id=request_id):
                    self._send(batch)
            except Exception:  # the jobs stay pending for the sweep; the thread goes on
                logger.exception("%d new job(s) not sent, left pending for the sweep", len(batch))
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()


_dispatcher: PerProcess[Dispatcher] = PerProcess(
    lambda: Dispatcher(window_ms=settings.SIMULATION_DISPATCH_WINDOW_MS),
    key=lambda: settings.SIMULATION_DISPATCH_WINDOW_MS,
)
# The pulled jobs' wake-up, sent a window after the commit that claimed it; the ids
# are not sent (the take finds them), only whether any came.
_waker: PerProcess[Dispatcher] = PerProcess(
    lambda: Dispatcher(window_ms=settings.SIMULATION_DISPATCH_WINDOW_MS, send=lambda _: _send_wake_up()),
    key=lambda: settings.SIMULATION_DISPATCH_WINDOW_MS,
)


def api_jobs_pulled() -> bool:
    """Whether the API's jobs wait for a wake-up's take (``SIMULATION_API_PULL``) rather
    than for messages of their ids."""
    return settings.SIMULATION_API_PULL


def dispatch(job_ids: Sequence[JobId], *, pulled: bool = True) -> None:
    """Committed jobs of the API: wake a worker to take them, a window from now unless a
    wake-up waits already (``pulled``, only for jobs the take looks at: ``trigger`` api),
    or push them through this process's dispatcher (``SIMULATION_API_PULL=false``)."""
    if not job_ids:
        return
    if not (pulled and api_jobs_pulled()):
        _dispatcher.get().submit(job_ids)
    elif _claim_wake_up():
        if len(job_ids) >= settings.SIMULATION_TASK_BATCH:
            _send_wake_up()  # a take's worth waits already: nothing to gather
        else:
            _waker.get().submit(job_ids)


def flush_dispatcher(timeout: float = 10.0) -> bool:
    """Send what this process's dispatchers hold now, job ids and a wake-up (shutdown, tests)."""
    return all([d.flush(timeout) for d in (_dispatcher.existing(), _waker.existing()) if d is not None])


atexit.register(flush_dispatcher)
