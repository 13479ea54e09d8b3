"""Every change to a SimulationJob happens here, and nowhere else.

Each state change and the event announcing it are written in one transaction
(transactional outbox). Transitions are conditional UPDATEs on the current status,
so the row itself is the lock: of two workers holding the same job, only one can
claim it, and a transition that is not allowed changes nothing and raises.

    pending -> running -> completed | failed      (pending -> failed, too)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import events, selectors
from .clients import CoreServiceError, core_service_client
from .engine import (
    EngineLimits,
    EngineValidationError,
    SimulationConfig,
    SimulationResult,
    TradeHistory,
    simulate,
)
from .errors import IdempotencyConflict, InvalidInput, InvalidTransition, JobNotFound
from .models import EventOutbox, JobStatus, JobTrigger, SimulationJob
from workers import metrics

logger = logging.getLogger(__name__)

JobId = Union[str, uuid.UUID]


def engine_limits() -> EngineLimits:
    return EngineLimits(
        max_paths=settings.SIMULATION_MAX_PATHS,
        max_horizon=settings.SIMULATION_MAX_HORIZON,
        max_samples=settings.SIMULATION_MAX_SAMPLES,
        max_history=settings.SIMULATION_MAX_TRADES,
    )


def create_job(
    *,
    assessment_id: Optional[str] = None,
    funded_account_id: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    trades: Optional[list[Any]] = None,
    trigger: str = JobTrigger.API,
    idempotency_key: Optional[str] = None,
    enqueue: bool = True,
) -> SimulationJob:
    """Validate a request and record it as a pending job; enqueue it after commit.

    With an ``idempotency_key`` the same key returns the same job (a unique column,
    not a check-then-insert); reusing a key for a different request raises
    :class:`IdempotencyConflict`.
    """
    assessment_id = _clean_id(assessment_id)
    funded_account_id = _clean_id(funded_account_id)
    errors: dict[str, list[str]] = {}
    if not assessment_id and not funded_account_id:
        errors["assessmentId"] = ["give an assessmentId or a fundedAccountId"]
    for name, value in (("assessmentId", assessment_id), ("fundedAccountId", funded_account_id)):
        if value and len(value) > 64:
            errors[name] = ["at most 64 characters"]
    parsed = _parse_config(config, errors)
    if trades is not None:
        _check_trades(trades, parsed, errors)
    if errors:
        raise InvalidInput(errors)

    input_data = {"config": dict(config or {}), "trades": trades}
    fingerprint = _fingerprint(assessment_id, funded_account_id, input_data)
    if idempotency_key:
        existing = SimulationJob.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
    job = SimulationJob(
        assessment_id=assessment_id,
        funded_account_id=funded_account_id,
        trigger=trigger,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
        input_data=input_data,
        paths_total=0 if parsed is None or parsed.paths == "auto" else int(parsed.paths),
    )
    try:
        with transaction.atomic():
            job.save(force_insert=True)
            transaction.on_commit(lambda: metrics.JOBS_CREATED.labels(trigger=trigger).inc())
            if enqueue:
                transaction.on_commit(lambda: enqueue_job(job_id=job.id))
    except IntegrityError:
        # Lost a race for the same idempotency key: the winner's job is the answer.
        existing = SimulationJob.objects.filter(idempotency_key=idempotency_key).first()
        if idempotency_key and existing is not None:
            return _replay(existing, fingerprint)
        raise
    return job


def create_job_for_completed_assessment(
    *, assessment_id: str, funded_account_id: Optional[str] = None, config: Optional[Mapping[str, Any]] = None,
) -> SimulationJob:
    """One job per completed assessment, however often its event is delivered.

    The idempotency key is the assessment, so a redelivered (or re-published) event
    returns the first job. If that job is still pending its task may have been lost
    (the broker refused it after the row committed), so it is enqueued again: a
    duplicate task is harmless, a missing one is not.
    """
    key = f"assessment-completed:{assessment_id}"
    existing = SimulationJob.objects.filter(idempotency_key=key).first()
    if existing is None:
        try:
            return create_job(assessment_id=assessment_id, funded_account_id=funded_account_id,
                              config=config if config is not None else settings.DEFAULT_JOB_CONFIG,
                              trigger=JobTrigger.KAFKA, idempotency_key=key)
        except IdempotencyConflict:  # the same assessment again, with other details: still one job
            existing = SimulationJob.objects.get(idempotency_key=key)
    if existing.status == JobStatus.PENDING:
        enqueue_job(job_id=existing.id)
    return existing


def create_daily_funded_jobs(*, run_date: dt.date, account_ids: Iterable[str]) -> list[SimulationJob]:
    """The daily run: a job for every funded account without a job in the last 24 hours.

    A unique constraint on (account, run date, trigger) makes a second beat, a re-run
    the same day or two runs at once create nothing new: each insert is attempted and
    a conflict means someone else already made that job. Only jobs created here are
    enqueued, after commit.
    """
    since = timezone.now() - dt.timedelta(hours=24)
    ids = {str(a) for a in account_ids}
    recent = set(
        SimulationJob.objects.filter(funded_account_id__in=ids, created_at__gte=since)
        .values_list("funded_account_id", flat=True)
    )
    config = dict(settings.DEFAULT_JOB_CONFIG)
    parsed = SimulationConfig.from_dict(config, engine_limits())  # a bad setting fails loudly, here
    created = []
    for account in sorted(ids - recent):
        job = SimulationJob(
            funded_account_id=account, trigger=JobTrigger.SCHEDULE, run_date=run_date,
            input_data={"config": config, "trades": None},
            paths_total=0 if parsed.paths == "auto" else int(parsed.paths),
        )
        try:
            with transaction.atomic():
                job.save(force_insert=True)
        except IntegrityError:
            continue  # this account's run for this day exists already
        transaction.on_commit(lambda job_id=job.id: enqueue_job(job_id=job_id))
        created.append(job)
    if created:
        metrics.JOBS_CREATED.labels(trigger=JobTrigger.SCHEDULE).inc(len(created))
    return created


def enqueue_job(*, job_id: JobId) -> None:
    """Send the job to the simulation queue (called after the creating transaction commits)."""
    from workers.tasks import run_simulation  # workers depends on simulations, not the reverse

    run_simulation.delay(str(job_id))


def start_job(*, job_id: JobId, worker_id: str) -> Optional[SimulationJob]:
    """Claim a pending job for this worker; ``None`` if someone else has it or it is done.

    The claim is one conditional UPDATE, so a duplicate delivery finds nothing to
    claim and does nothing. The 'started' event is written in the same transaction,
    on the first attempt only.
    """
    with transaction.atomic():
        claimed = SimulationJob.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
            status=JobStatus.RUNNING,
            started_at=timezone.now(),
            attempts=F("attempts") + 1,
            worker_id=worker_id,
            paths_done=0,
            updated_at=timezone.now(),
        )
        if not claimed:
            return None
        job = SimulationJob.objects.get(pk=job_id)
        if job.attempts == 1:  # a job starts once, however often its worker dies
            _emit(job, events.SIMULATION_STARTED, events.started_payload(job))
    return job


Claim = tuple[str, int]  # (worker id, attempt): who holds a running job


def complete_job(*, job_id: JobId, result: SimulationResult, claim: Optional[Claim] = None) -> SimulationJob:
    """Store the result of a running job and announce it.

    With ``claim``, only the holder of that claim may finish the job: a worker whose
    job was requeued behind its back (its heartbeat lapsed) cannot overwrite the
    new attempt, so a result is written once.
    """
    return _finish(job_id, JobStatus.COMPLETED, claim=claim, result=result.to_dict(), summary=result.summary())


def fail_job(*, job_id: JobId, error: str, claim: Optional[Claim] = None) -> SimulationJob:
    """Mark a pending or running job failed with a reason, and announce it."""
    return _finish(job_id, JobStatus.FAILED, claim=claim, error=error[:4000])


def requeue_stale_job(*, job_id: JobId, dead_worker_id: str, max_attempts: int,
                      enqueue: bool = True) -> Optional[SimulationJob]:
    """Give a running job whose worker died back to the queue, or fail it for good.

    Conditional on the job still being held by ``dead_worker_id``, so a sweep and a
    redelivered message racing for the same job requeue it once. A job that has
    already taken down ``max_attempts`` workers (out of memory, say) fails with the
    reason instead of looping. Returns the job if it changed, else ``None``.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (SimulationJob.objects.select_for_update()
               .filter(pk=job_id, status=JobStatus.RUNNING, worker_id=dead_worker_id).first())
        if job is None:
            return None
        if job.attempts >= max_attempts:
            error = (f"gave up after {job.attempts} attempts: each time the worker running it died "
                     f"(last {dead_worker_id}); the job may exhaust a worker's memory")
            return _finish(job.id, JobStatus.FAILED, claim=(dead_worker_id, job.attempts), error=error)
        SimulationJob.objects.filter(pk=job.id).update(
            status=JobStatus.PENDING, worker_id="", paths_done=0, updated_at=now,
        )
        if enqueue:
            transaction.on_commit(lambda: enqueue_job(job_id=job.id))
        logger.warning("job %s requeued: worker %s died", job.id, dead_worker_id)
    metrics.JOBS_REQUEUED.inc()
    return SimulationJob.objects.get(pk=job_id)


def requeue_jobs_of_dead_workers(*, is_alive: Callable[[str], bool], max_attempts: int,
                                 grace_seconds: float) -> list[SimulationJob]:
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


def claim_job(*, job_id: JobId, worker_id: str, is_alive: Callable[[str], bool],
              max_attempts: int) -> Optional[SimulationJob]:
    """Claim a job for a delivered task, recovering it first if its worker is dead.

    A redelivered message (the broker gave it back after its worker was killed)
    finds the job still 'running' under the dead worker; if that worker's heartbeat
    is gone the job is requeued (or failed past ``max_attempts``) and claimed here.
    """
    job = start_job(job_id=job_id, worker_id=worker_id)
    if job is not None:
        return job
    holder = SimulationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).values_list("worker_id", flat=True).first()
    if holder and holder != worker_id and not is_alive(holder):
        # this delivery claims it right away: no new message needed
        requeued = requeue_stale_job(job_id=job_id, dead_worker_id=holder, max_attempts=max_attempts, enqueue=False)
        if requeued is not None and requeued.status == JobStatus.PENDING:
            return start_job(job_id=job_id, worker_id=worker_id)
    return None


def record_progress(*, job_id: JobId, paths_done: int, paths_total: int) -> None:
    """Progress of a running job (no event: it is not a state change)."""
    SimulationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        paths_done=paths_done, paths_total=paths_total
    )


def run_job(*, job_id: JobId, worker_id: str, is_alive: Callable[[str], bool] = lambda _: True,
            max_attempts: Optional[int] = None) -> Optional[SimulationJob]:
    """Claim, simulate and finish one job: what a worker does with a delivered task.

    Bad input and an unusable Core Service fail the job with the reason; any other
    error fails it too and is re-raised so the worker logs and counts it. Returns
    ``None`` when there was nothing to claim (a duplicate or late delivery).
    """
    job = claim_job(job_id=job_id, worker_id=worker_id, is_alive=is_alive,
                    max_attempts=max_attempts or settings.SIMULATION_MAX_ATTEMPTS)
    if job is None:
        logger.info("job %s: nothing to claim (already taken or finished)", job_id)
        return None
    claim = (worker_id, job.attempts)
    started = time.perf_counter()
    try:
        history = _load_history(job)
        config = SimulationConfig.from_dict(job.input_data.get("config"), engine_limits())
        result = simulate(history, config, limits=engine_limits(), progress=_progress_writer(job))
    except (EngineValidationError, CoreServiceError) as exc:
        return fail_job(job_id=job.id, error=str(exc), claim=claim)
    except BaseException as exc:  # SoftTimeLimitExceeded, bugs: never leave the job running
        fail_job(job_id=job.id, error=f"internal error: {exc.__class__.__name__}: {exc}", claim=claim)
        raise
    metrics.JOB_DURATION.labels(method=config.method).observe(time.perf_counter() - started)
    metrics.PATHS_SIMULATED.inc(result.paths)
    return complete_job(job_id=job.id, result=result, claim=claim)


def _finish(job_id: JobId, status: str, *, claim: Optional[Claim] = None, result: Optional[dict[str, Any]] = None,
            summary: Optional[dict[str, Any]] = None, error: str = "") -> SimulationJob:
    allowed_from = [JobStatus.RUNNING] if status == JobStatus.COMPLETED else [JobStatus.PENDING, JobStatus.RUNNING]
    now = timezone.now()
    guard: dict[str, Any] = {}
    if claim is not None:
        guard = {"status": JobStatus.RUNNING, "worker_id": claim[0], "attempts": claim[1]}
    with transaction.atomic():
        changed = SimulationJob.objects.filter(pk=job_id, status__in=allowed_from, **guard).update(
            status=status, result=result, error=error, completed_at=now, updated_at=now,
            **({"paths_done": F("paths_total")} if status == JobStatus.COMPLETED else {}),
        )
        if not changed:
            current = SimulationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
            if current is None:
                raise JobNotFound(f"no simulation job {job_id}")
            if claim is not None and current == JobStatus.RUNNING:
                raise InvalidTransition(f"job {job_id} is no longer held by {claim[0]} (attempt {claim[1]})")
            raise InvalidTransition(f"job {job_id} is {current}; it cannot become {status}")
        job = SimulationJob.objects.get(pk=job_id)
        _emit(job, events.SIMULATION_COMPLETED, events.completed_payload(job, summary))
        transaction.on_commit(lambda: metrics.JOBS_FINISHED.labels(status=status).inc())
    return job


def _emit(job: SimulationJob, topic: str, payload: dict[str, Any]) -> EventOutbox:
    return EventOutbox.objects.create(job=job, topic=topic, key=events.event_key(job), payload=payload)


def _load_history(job: SimulationJob) -> TradeHistory:
    trades = job.input_data.get("trades")
    if trades is not None:
        return TradeHistory.from_records(trades)
    return core_service_client().trade_history(
        assessment_id=job.assessment_id, funded_account_id=job.funded_account_id
    )


def _progress_writer(job: SimulationJob) -> Callable[[int, int], None]:
    interval = settings.SIMULATION_PROGRESS_INTERVAL
    last = [0.0]

    def write(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            last[0] = now
            record_progress(job_id=job.id, paths_done=done, paths_total=total)

    return write


def _parse_config(config: Optional[Mapping[str, Any]], errors: dict[str, list[str]]) -> Optional[SimulationConfig]:
    if config is not None and not isinstance(config, Mapping):
        errors["config"] = ["must be an object"]
        return None
    try:
        return SimulationConfig.from_dict(config, engine_limits())
    except EngineValidationError as exc:
        for field, reasons in exc.errors.items():
            errors[f"config.{field}"] = reasons
        return None


def _check_trades(trades: Any, config: Optional[SimulationConfig], errors: dict[str, list[str]]) -> None:
    if not isinstance(trades, list):
        errors["trades"] = ["must be a list of trades"]
        return
    try:
        history = TradeHistory.from_records(trades)
        history.validate(mode=config.mode if config else "pnl", max_history=settings.SIMULATION_MAX_TRADES)
    except EngineValidationError as exc:
        errors.update(exc.errors)


def _replay(existing: SimulationJob, fingerprint: str) -> SimulationJob:
    if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different request (job %s)" % existing.id
        )
    return existing


def _fingerprint(assessment_id: Optional[str], funded_account_id: Optional[str], input_data: dict[str, Any]) -> str:
    canonical = json.dumps([assessment_id, funded_account_id, input_data], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clean_id(value: Any) -> Optional[str]:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
