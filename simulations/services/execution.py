"""Running a job: what a worker does with a delivered task."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from simulations import log_context, metrics
from simulations.clients import CoreServiceError, core_service_client
from simulations.engine import EngineValidationError, SimulationCancelled, SimulationConfig, TradeHistory, simulate
from simulations.errors import InvalidInput, InvalidTransition
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services.batch import JobChange, finish_jobs
from simulations.services.dispatch import JobId, woken
from simulations.services.jobs import engine_limits, record_progress
from simulations.services.recovery import claim_job
from simulations.wire import snake_keys

logger = logging.getLogger(__name__)

# Writes one job's end state; returns False if the job's guard no longer held.
ChangeWriter = Callable[[JobChange], bool]


def write_now(change: JobChange) -> bool:
    """The unbatched writer: one transaction for this one change."""
    return change.job_id in finish_jobs([change])


def run_job(
    *,
    job_id: JobId,
    worker_id: str,
    is_alive: Callable[[str], bool] = lambda _: True,
    max_attempts: int | None = None,
    write: ChangeWriter = write_now,
    parallel: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulationJob | None:
    """Simulate one job and write its end state: what a worker does with a task.

    Small jobs (``SMALL_JOB_MAX_SAMPLES``) run straight from ``pending``: their end
    state is written by ``write`` (the batch writer) only if the job is still pending,
    so a duplicate delivery's result is discarded and a failed write leaves the job
    pending for the redelivered task. Larger jobs are claimed first (``running``,
    with progress and dead-worker recovery).

    Bad input and an unusable Core Service fail the job with the reason; any other
    error fails it too and is re-raised so the worker logs and counts it. Returns
    ``None`` when there was nothing to do (a duplicate or late delivery).
    ``on_progress(done, total)`` hears of the paths as they are drawn (the command
    line's progress bar).
    """
    job = SimulationJob.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        logger.info("job %s: nothing to do (%s)", job_id, "unknown" if job is None else job.status)
        return None
    small = job.status == JobStatus.PENDING and _is_small(job)
    if not small:
        job = claim_job(
            job_id=job_id,
            worker_id=worker_id,
            is_alive=is_alive,
            max_attempts=max_attempts or settings.SIMULATION_MAX_ATTEMPTS,
        )
        if job is None:
            logger.info("job %s: nothing to claim (already taken or finished)", job_id)
            return None
    try:
        change = _compute(
            job, worker_id=worker_id, small=small, parallel=parallel, write_on_crash=write, on_progress=on_progress
        )
    except SimulationCancelled:
        logger.info("job %s: stopped, no longer held by %s (cancelled or requeued)", job.id, worker_id)
        return None
    if not write(change):
        if small:
            return None  # another delivery of the same job wrote first
        raise InvalidTransition(f"job {job.id} is no longer held by {worker_id} (attempt {job.attempts})")
    return _as_written(job, change)


def run_small_jobs(
    *,
    job_ids: Sequence[JobId],
    worker_id: str,
    write: Callable[[list[JobChange]], set],
    parallel: bool = False,
    **claimed_options,
) -> int:
    """Run a batch of jobs sent as one task (a bulk intake's burst): rows loaded in one
    query, the small ones simulated straight from ``pending`` and written together by
    ``write`` (one transaction: all or nothing, so a failed write leaves every one of
    them pending for the redelivered task). A job that is not small (or not pending)
    goes through ``run_job``, claimed and written on its own. Returns how many were written.
    """
    jobs = SimulationJob.objects.in_bulk([str(j) for j in job_ids])
    changes: dict[Any, JobChange] = {}
    written = 0
    for job in jobs.values():
        if job.is_finished or job.id in changes:
            continue
        if job.status == JobStatus.PENDING and _is_small(job):
            changes[job.id] = _compute(
                job,
                worker_id=worker_id,
                small=True,
                parallel=parallel,
                write_on_crash=lambda change: bool(write([change])),
            )
        elif run_job(job_id=job.id, worker_id=worker_id, parallel=parallel, **claimed_options) is not None:
            written += 1
    return written + len(write(list(changes.values())))


def reserve_pending_jobs(*, token: str, limit: int) -> list[Any]:
    """Take up to ``limit`` pending API jobs for the wake-up task ``token``, oldest
    first: those free, those it took before (a redelivered wake-up whose worker died),
    and those whose reservation is older than ``SIMULATION_RESERVATION_LEASE``. Rows
    another take holds locked are skipped, so two takes never get the same job. The
    token's own running jobs come too (beyond ``limit``: a take's few large jobs): a
    child killed mid-job leaves its job running, and ``run_job``'s claim takes it back
    once its holder is dead, as a pushed job's redelivery does. The ids taken."""
    expired = timezone.now() - dt.timedelta(seconds=settings.SIMULATION_RESERVATION_LEASE)
    with transaction.atomic():
        # two statements, not one with an OR: each keeps its own index (the oldest
        # pending API jobs in order from job_api_pending; the few running from job_unfinished)
        ids = list(
            SimulationJob.objects.select_for_update(skip_locked=True)
            .filter(status=JobStatus.PENDING, trigger=JobTrigger.API)
            .filter(Q(reserved_by="") | Q(reserved_by=token) | Q(updated_at__lt=expired))
            .order_by("created_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            SimulationJob.objects.filter(id__in=ids).update(reserved_by=token, updated_at=timezone.now())
    running = SimulationJob.objects.filter(status=JobStatus.RUNNING, reserved_by=token)
    return ids + list(running.values_list("id", flat=True))


def run_pending_jobs(
    *,
    token: str,
    worker_id: str,
    write: Callable[[list[JobChange]], set],
    limit: int,
    wake: Callable[[], object],
    parallel: bool = False,
    **claimed_options: Any,
) -> int:
    """A wake-up task: take pending API jobs (``reserve_pending_jobs``) and run them as
    one bulk message's (``run_small_jobs``). A full take wakes another worker first, for
    what may still be waiting. Returns how many were written."""
    woken()
    ids = reserve_pending_jobs(token=token, limit=limit)
    if len(ids) >= limit:
        wake()
    if not ids:
        return 0
    return run_small_jobs(job_ids=ids, worker_id=worker_id, write=write, parallel=parallel, **claimed_options)


def _compute(job: SimulationJob, **options: Any) -> JobChange:
    """``_simulate`` (its options), every line logged meanwhile carrying the job's id
    and its request's, and one line for the outcome."""
    ids = {"job_id": str(job.id)}
    if job.request_id:  # else the one in context stays (a CLI run has none)
        ids["request_id"] = job.request_id
    with log_context.bound_contextvars(**ids):
        change = _simulate(job, **options)
        took = (change.completed_at - change.started_at).total_seconds() * 1000
        if change.status == JobStatus.COMPLETED:
            logger.info("job %s: completed in %.1f ms", job.id, took)
        else:
            logger.warning("job %s: failed in %.1f ms: %s", job.id, took, change.error)
    return change


def _simulate(
    job: SimulationJob,
    *,
    worker_id: str,
    small: bool,
    parallel: bool,
    write_on_crash: ChangeWriter,
    on_progress: Callable[[int, int], None] | None = None,
) -> JobChange:
    """Simulate one job into its end state (completed, or failed with the reason)."""
    change = JobChange(
        job_id=job.id,
        status=JobStatus.COMPLETED,
        worker_id=worker_id,
        started_at=timezone.now(),
        from_pending=small,
        attempt=job.attempts,
    )
    metrics.JOB_QUEUE_WAIT.observe(max(0.0, (change.started_at - job.created_at).total_seconds()))
    started = time.perf_counter()
    watch = None if small else _ProgressWatch(job)
    listeners = [f for f in (watch and watch.progress, on_progress) if f is not None]

    def progress(done: int, total: int) -> None:
        for listener in listeners:
            listener(done, total)

    try:
        history = _load_history(job)
        config = SimulationConfig.from_dict(snake_keys(job.input_data.get("config") or {}), engine_limits())
        result = simulate(
            history,
            config,
            limits=engine_limits(),
            parallel=parallel,
            progress=progress if listeners else None,
            should_stop=watch and watch.released,
        )
    except SimulationCancelled:
        raise  # the job is no longer ours: nothing to write
    except EngineValidationError as exc:
        change.status, change.error = JobStatus.FAILED, str(InvalidInput(exc.errors))[:4000]
    except CoreServiceError as exc:
        change.status, change.error = JobStatus.FAILED, str(exc)[:4000]
    except BaseException as exc:  # SoftTimeLimitExceeded, bugs: never leave the job running
        change.status, change.error = JobStatus.FAILED, f"internal error: {exc.__class__.__name__}: {exc}"[:4000]
        write_on_crash(change)
        raise
    else:
        change.result, change.summary = result.to_dict(), result.summary()
        metrics.JOB_DURATION.labels(method=config.method).observe(time.perf_counter() - started)
        metrics.PATHS_SIMULATED.inc(result.paths)
    change.completed_at = timezone.now()
    try:
        change.encode()
    except ValueError as exc:  # a result that is not JSON cannot be stored
        change.status, change.result, change.summary = JobStatus.FAILED, None, None
        change.error = f"result could not be stored: {exc}"
    return change


def _as_written(job: SimulationJob, change: JobChange) -> SimulationJob:
    """The job as the write left it, without reading it back (a round trip per job)."""
    job.status, job.result, job.error = change.status, change.result, change.error
    job.started_at = job.started_at or change.started_at
    job.completed_at, job.worker_id = change.completed_at, change.worker_id
    job.attempts += int(change.from_pending)
    if change.status == JobStatus.COMPLETED:
        job.paths_done = job.paths_total
    return job


def _is_small(job: SimulationJob) -> bool:
    """Cheap enough to run without a claim: paths x horizon x trades per step, estimated."""
    config = job.input_data.get("config") or {}
    paths = config.get("paths", 10_000)
    if not isinstance(paths, int):
        return False  # "auto" (or invalid: the claimed path reports it)
    trades = job.input_data.get("trades")
    horizon = config.get("horizon") or (len(trades) if isinstance(trades, list) else 1_000)
    return isinstance(horizon, int) and paths * horizon <= settings.SMALL_JOB_MAX_SAMPLES


def _load_history(job: SimulationJob) -> TradeHistory:
    trades = job.input_data.get("trades")
    if trades is not None:
        return TradeHistory.from_records(trades)
    return core_service_client().trade_history(assessment_id=job.assessment_id, funded_account_id=job.funded_account_id)


class _ProgressWatch:
    """A claimed job's progress, written at most every ``SIMULATION_PROGRESS_INTERVAL``;
    each write also tells whether the job is still this worker's. Once it is not
    (cancelled, or requeued after a lapsed heartbeat) the engine stops before its next
    chunk of paths."""

    def __init__(self, job: SimulationJob):
        self.job = job
        self.interval = settings.SIMULATION_PROGRESS_INTERVAL
        self.last = 0.0
        self.held = True

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.held = record_progress(
                job_id=self.job.id, paths_done=done, paths_total=total, claim=(self.job.worker_id, self.job.attempts)
            )

    def released(self) -> bool:
        return not self.held
