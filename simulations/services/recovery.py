"""Recovering jobs whose worker died: the sweep, the redelivered task, the attempt cap."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from simulations import metrics, selectors
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services.dispatch import WAKE_TTL, JobId, api_jobs_pulled, enqueue_job, wake_workers
from simulations.services.jobs import fail_job, start_job

logger = logging.getLogger(__name__)


def requeue_stale_job(
    *, job_id: JobId, dead_worker_id: str, max_attempts: int, enqueue: bool = True
) -> SimulationJob | None:
    """Give a running job whose worker died back to the queue, or fail it for good.

    Conditional on the job still being held by ``dead_worker_id``, so a sweep and a
    redelivered message racing for the same job requeue it once. A job that has
    already taken down ``max_attempts`` workers (out of memory, say) fails with the
    reason instead of looping. Returns the job if it changed, else ``None``.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (
            SimulationJob.objects.select_for_update()
            .filter(pk=job_id, status=JobStatus.RUNNING, worker_id=dead_worker_id)
            .first()
        )
        if job is None:
            return None
        if job.attempts >= max_attempts:
            error = (
                f"gave up after {job.attempts} attempts: each time the worker running it died "
                f"(last {dead_worker_id}); the job may exhaust a worker's memory"
            )
            return fail_job(job_id=job.id, error=error, claim=(dead_worker_id, job.attempts))
        SimulationJob.objects.filter(pk=job.id).update(
            status=JobStatus.PENDING,
            worker_id="",
            paths_done=0,
            updated_at=now,
        )
        if enqueue:
            transaction.on_commit(lambda: enqueue_job(job_id=job.id))
        logger.warning("job %s requeued: worker %s died", job.id, dead_worker_id)
    metrics.JOBS_REQUEUED.inc()
    return SimulationJob.objects.get(pk=job_id)


def requeue_jobs_of_dead_workers(
    *, is_alive: Callable[[str], bool], max_attempts: int, grace_seconds: float
) -> list[SimulationJob]:
    """The sweep: every running job whose worker's heartbeat is gone is requeued (or failed).

    Jobs claimed within ``grace_seconds`` are left alone, and command-line runs have
    no worker heartbeat to check, so they are never swept.
    """
    changed = []
    for job_id, holder in selectors.running_jobs_older_than(seconds=grace_seconds):
        if is_alive(holder):
            continue
        metrics.STALE_HEARTBEATS.inc()
        job = requeue_stale_job(job_id=job_id, dead_worker_id=holder, max_attempts=max_attempts)
        if job is not None:
            changed.append(job)
    return changed


def claim_job(
    *, job_id: JobId, worker_id: str, is_alive: Callable[[str], bool], max_attempts: int
) -> SimulationJob | None:
    """Claim a job for a delivered task, recovering it first if its worker is dead.

    A redelivered message (the broker gave it back after its worker was killed)
    finds the job still 'running' under the dead worker; if that worker's heartbeat
    is gone the job is requeued (or failed past ``max_attempts``) and claimed here.
    """
    job = start_job(job_id=job_id, worker_id=worker_id)
    if job is not None:
        return job
    holder = (
        SimulationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).values_list("worker_id", flat=True).first()
    )
    if holder and holder != worker_id and not is_alive(holder):
        # this delivery claims it right away: no new message needed
        requeued = requeue_stale_job(job_id=job_id, dead_worker_id=holder, max_attempts=max_attempts, enqueue=False)
        if requeued is not None and requeued.status == JobStatus.PENDING:
            return start_job(job_id=job_id, worker_id=worker_id)
    return None


def reenqueue_stale_pending(*, older_than_seconds: float, limit: int = 1_000) -> int:
    """Enqueue again jobs pending for longer than ``older_than_seconds``.

    The safety net for a task that never reached the broker (it refused the message
    after the job committed) or whose message was dropped: a duplicate task is a
    no-op, a missing one would leave the job pending forever. ``updated_at`` is
    touched so the same job is re-sent at most once per period.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        SimulationJob.objects.filter(status=JobStatus.PENDING, updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )
    _reenqueue(ids)
    if ids:
        logger.warning("re-enqueued %d jobs pending for over %ss", len(ids), older_than_seconds)
    return len(ids)


def wake_for_waiting_api_jobs() -> bool:
    """Wake the workers if an API job has been pending, untouched, for over ``WAKE_TTL``:
    its wake-up was lost (with a worker, or refused by the broker), or its reservation's
    worker died. True if a wake-up was sent. Pushed (``SIMULATION_API_PULL=false``), API
    jobs wait in messages of their ids, not for a wake-up: none is sent."""
    if not api_jobs_pulled():
        return False
    cutoff = timezone.now() - dt.timedelta(seconds=WAKE_TTL)
    waiting = SimulationJob.objects.filter(status=JobStatus.PENDING, trigger=JobTrigger.API, updated_at__lt=cutoff)
    return waiting.exists() and wake_workers()


def reenqueue_held_by_dead_worker(*, job_ids: Sequence[str], dead_worker_id: str) -> int:
    """Enqueue again those of ``job_ids`` that are still pending: their messages were held
    by a worker process that died before running them (``workers.held``), and the broker
    would give them back only after its visibility timeout. A job that started since is
    left alone: its own worker's heartbeat decides (``requeue_jobs_of_dead_workers``)."""
    valid = [job_id for job_id in job_ids if _is_uuid(job_id)]
    ids = list(SimulationJob.objects.filter(id__in=valid, status=JobStatus.PENDING).values_list("id", flat=True))
    _reenqueue(ids)
    if ids:
        metrics.JOBS_RESENT.inc(len(ids))
        logger.warning("re-enqueued %d jobs held by dead worker %s", len(ids), dead_worker_id)
    return len(ids)


def release_takes_of_dead_worker(*, tokens: Sequence[str], dead_worker_id: str) -> int:
    """Free the pending jobs that the takes ``tokens`` (wake-ups' task ids) reserved, and
    wake a worker for them: their wake-ups' messages were held by a worker process that
    died (``workers.held``), whose messages the broker gives back only after its
    visibility timeout, and any other take would leave them alone until
    ``SIMULATION_RESERVATION_LEASE``. A job the take had started is its worker's
    heartbeat's to requeue (``requeue_jobs_of_dead_workers``). Returns how many were freed."""
    if not tokens:
        return 0
    # only API jobs are pulled: the pending API jobs' partial index (job_api_pending) is all it reads
    reserved = SimulationJob.objects.filter(status=JobStatus.PENDING, trigger=JobTrigger.API, reserved_by__in=tokens)
    freed = reserved.update(reserved_by="", updated_at=timezone.now())
    if freed:
        metrics.JOBS_RESENT.inc(freed)
        logger.warning("freed %d pulled jobs reserved by dead worker %s", freed, dead_worker_id)
        wake_workers()
    return freed


def _reenqueue(ids: list[Any]) -> None:
    """Send pending jobs again; ``updated_at`` is touched so the periodic re-send does
    not send them once more within its period."""
    if ids:
        SimulationJob.objects.filter(id__in=ids, status=JobStatus.PENDING).update(updated_at=timezone.now())
        for job_id in ids:
            enqueue_job(job_id=job_id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
