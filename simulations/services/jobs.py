"""The life of a SimulationJob: create, claim, finish. Only services change jobs.

Each state change and the event announcing it are written in one transaction
(transactional outbox). Transitions are conditional UPDATEs on the current status,
so the row itself is the lock: of two workers holding the same job, only one can
claim it, and a transition that is not allowed changes nothing and raises.

    pending ──claim──> running ──finish──> completed | failed
       │                  │
       │                  └──worker died (recovery.py)──> pending   (failed after SIMULATION_MAX_ATTEMPTS)
       └──> failed | cancelled          running ──cancel──> cancelled

    completed, failed and cancelled are final: nothing changes a finished job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from simulations import events, log_context, metrics
from simulations.engine import (
    EngineLimits,
    EngineValidationError,
    SimulationConfig,
    SimulationResult,
    TradeHistory,
    check,
    planned_samples,
)
from simulations.errors import IdempotencyConflict, InvalidInput, InvalidTransition, JobNotFound
from simulations.models import ApiClient, EventOutbox, JobStatus, JobTrigger, SimulationJob
from simulations.services import budget
from simulations.services.access import system_client
from simulations.services.batch import insert_jobs
from simulations.services.dispatch import JobId, dispatch
from simulations.services.rule_sets import NAME_RULE, RULE_SET_NAME, RuleSets
from simulations.wire import MAX_DEPTH, depth_of, nul_paths, snake_keys

logger = logging.getLogger(__name__)


# Keys fit the column (255) with room for a batch's "#<position>".
IDEMPOTENCY_KEY_MAX = 200
# A history the Core Service will send is counted as this many units, one trade each,
# when the request sets no horizon: a year of trading days.
UNSEEN_HISTORY_UNITS = 252


def engine_limits() -> EngineLimits:
    return EngineLimits(
        max_paths=settings.SIMULATION_MAX_PATHS,
        max_horizon=settings.SIMULATION_MAX_HORIZON,
        max_samples=settings.SIMULATION_MAX_SAMPLES,
        max_history=settings.SIMULATION_MAX_TRADES,
    )


def create_job(
    *,
    assessment_id: str | None = None,
    funded_account_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    trades: list[Any] | None = None,
    trigger: str = JobTrigger.API,
    idempotency_key: str | None = None,
    client: ApiClient | None = None,
    enqueue: bool = True,
    request_id: str | None = None,
    rule_set: str | None = None,
) -> SimulationJob:
    """Validate a request and record it as a pending job of ``client`` (default: the
    system client); enqueue it after commit. ``rule_set`` names the rules it runs by.

    With an ``idempotency_key`` the same key of the same client returns the same job
    (a unique constraint, not a check-then-insert); reusing a key for a different
    request raises :class:`IdempotencyConflict`.
    """
    job = build_job(
        assessment_id=assessment_id,
        funded_account_id=funded_account_id,
        config=config,
        trades=trades,
        trigger=trigger,
        idempotency_key=idempotency_key,
        client=client,
        request_id=request_id,
        rule_set=rule_set,
    )
    if idempotency_key:
        existing = SimulationJob.objects.filter(client=job.client, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, job.request_fingerprint)
    try:
        with transaction.atomic():
            budget.reserve(job.client, [job])
            job.save(force_insert=True)
            transaction.on_commit(lambda: metrics.JOBS_CREATED.labels(trigger=trigger).inc())
            if enqueue:
                transaction.on_commit(lambda: dispatch([job.id], pulled=trigger == JobTrigger.API))
    except IntegrityError:
        # Lost a race for the same idempotency key: the winner's job is the answer.
        existing = SimulationJob.objects.filter(client=job.client, idempotency_key=idempotency_key).first()
        if idempotency_key and existing is not None:
            return _replay(existing, job.request_fingerprint)
        raise
    logger.info("job %s created (%s, client %s)", job.id, trigger, job.client.name, extra={"job_id": str(job.id)})
    return job


def create_jobs(
    requests: Sequence[Mapping[str, Any]],
    *,
    trigger: str = JobTrigger.API,
    idempotency_key: str | None = None,
    client: ApiClient | None = None,
) -> list[SimulationJob]:
    """Many jobs in one request (``POST /simulations/batch``): all valid, or none created.

    Each request is what ``create_job`` takes (assessment_id, funded_account_id,
    config, trades). One INSERT for all, and their tasks go out after the commit,
    several jobs per message (``enqueue_jobs``). :class:`InvalidInput` names each bad
    field with its position (``jobs[3].config.paths``). With an ``idempotency_key``
    the same key returns the same jobs (each job keeps ``<key>#<position>``); the key
    used for another batch raises :class:`IdempotencyConflict`.
    """
    jobs, errors, client, rule_sets = [], {}, client or system_client(), RuleSets()
    idempotency_key = idempotency_key or None  # an empty header is no key
    for i, request in enumerate(requests):
        try:
            job = build_job(**request, trigger=trigger, client=client, rule_sets=rule_sets)
            if idempotency_key is not None:  # checked once, below; each job's is derived from it
                job.idempotency_key = f"{idempotency_key}#{i}"
            jobs.append(job)
        except InvalidInput as exc:
            errors.update({f"jobs[{i}].{field}": reasons for field, reasons in exc.errors.items()})
    _check_key(idempotency_key, errors)
    if errors:
        raise InvalidInput(errors)
    if idempotency_key is not None and (earlier := _replay_batch(jobs)) is not None:
        return earlier
    if not client.is_system:
        budget.check_batch_size(jobs)
    try:
        with transaction.atomic():
            budget.reserve(client, jobs)
            insert_jobs(jobs)
            transaction.on_commit(lambda: metrics.JOBS_CREATED.labels(trigger=trigger).inc(len(jobs)))
            transaction.on_commit(lambda: dispatch([job.id for job in jobs], pulled=trigger == JobTrigger.API))
    except IntegrityError:
        # Lost a race for the same key: the winner's jobs are the answer.
        if idempotency_key is not None and (earlier := _replay_batch(jobs)) is not None:
            return earlier
        raise
    if jobs:
        logger.info("%d jobs created (%s, client %s): %s..%s", len(jobs), trigger, client.name, jobs[0].id, jobs[-1].id)
    return jobs


def _replay_batch(jobs: list[SimulationJob]) -> list[SimulationJob] | None:
    """The jobs an earlier batch with these keys made, in order; ``None`` if there was none."""
    keys = [str(j.idempotency_key) for j in jobs]
    one_more = f"{keys[0].rsplit('#', 1)[0]}#{len(jobs)}"  # there if the earlier batch was longer
    found = SimulationJob.objects.filter(client=jobs[0].client, idempotency_key__in=[*keys, one_more])
    earlier = {j.idempotency_key: j for j in found}
    if not earlier:
        return None
    same = [earlier.get(key) for key in keys]
    if one_more in earlier or any(
        e is None or e.request_fingerprint != j.request_fingerprint for e, j in zip(same, jobs)
    ):
        raise IdempotencyConflict("this Idempotency-Key was used for a different batch")
    return [e for e in same if e is not None]


def build_job(
    *,
    assessment_id: str | None = None,
    funded_account_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    trades: list[Any] | None = None,
    trigger: str = JobTrigger.API,
    idempotency_key: str | None = None,
    client: ApiClient | None = None,
    request_id: str | None = None,
    rule_set: str | None = None,
    rule_sets: RuleSets | None = None,
) -> SimulationJob:
    """A validated, unsaved pending job of ``client`` (default: the system client) made
    by ``request_id`` (default: the request in context); :class:`InvalidInput` names
    every bad field. ``rule_set`` names a rule set whose latest version's rules go into
    the config (looked up through ``rule_sets``, one lookup for a whole batch)."""
    assessment_id = _clean_id(assessment_id)
    funded_account_id = _clean_id(funded_account_id)
    errors: dict[str, list[str]] = {}
    if not assessment_id and not funded_account_id:
        errors["assessmentId"] = ["give an assessmentId or a fundedAccountId"]
    for name, value in (("assessmentId", assessment_id), ("fundedAccountId", funded_account_id)):
        if value and len(value) > 64:
            errors[name] = ["at most 64 characters"]
    _check_key(idempotency_key, errors)
    fields = {"assessmentId": assessment_id, "fundedAccountId": funded_account_id, "config": config, "trades": trades}
    limit = f"nested more than {MAX_DEPTH} levels deep"
    too_deep = {name: [limit] for name, value in fields.items() if depth_of(value) > MAX_DEPTH}
    if too_deep:  # nothing else should walk what Python cannot
        raise InvalidInput({**errors, **too_deep})
    given = snake_keys(dict(config)) if isinstance(config, Mapping) else config  # not an object: refused below
    requested: dict[str, Any] = {"config": given if config is not None else {}, "trades": trades}
    version = None
    if rule_set is not None:
        requested["rule_set"] = rule_set
        if not isinstance(rule_set, str) or not RULE_SET_NAME.fullmatch(rule_set):
            errors["ruleSet"] = [f"must be a rule set's name: {NAME_RULE}"]
        elif config is None or isinstance(config, Mapping):
            version, applied = (rule_sets or RuleSets()).apply(rule_set, config, errors)
            config = applied if applied is not None else config
    parsed = _parse_config(config, errors)
    samples = 0.0
    if trades is not None:
        samples = _check_trades(trades, parsed, errors)
    elif parsed is not None:
        samples = planned_samples(parsed, trades=UNSEEN_HISTORY_UNITS, units=UNSEEN_HISTORY_UNITS)
    if errors:
        raise InvalidInput({**errors, **_nul_errors(fields)})
    input_data = {"config": snake_keys(dict(config or {})), "trades": trades}
    # the request as given: a retry naming the same rule set is the same request, whatever its version now
    canonical = json.dumps([assessment_id, funded_account_id, requested], sort_keys=True, default=str)
    # how JSON writes a NUL; a literal backslash-u0000 in a string is told apart by the walk
    if "\\u0000" in canonical and (nul := _nul_errors(fields)):
        raise InvalidInput(nul)
    return SimulationJob(
        client=client or system_client(),
        assessment_id=assessment_id,
        funded_account_id=funded_account_id,
        trigger=trigger,
        idempotency_key=idempotency_key or None,
        request_fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        input_data=input_data,
        rule_set=version,
        paths_total=0 if parsed is None or parsed.paths == "auto" else int(parsed.paths),
        samples_planned=round(samples),
        request_id=request_id if request_id is not None else log_context.current_request_id(),
    )


def rerun_job(*, job_id: JobId) -> SimulationJob:
    """A new pending job with a failed or cancelled job's request (the same client,
    ids, config and trades); the old job stays as it was."""
    old = SimulationJob.objects.filter(pk=job_id).select_related("client").first()
    if old is None:
        raise JobNotFound(f"no simulation job {job_id}")
    if old.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise InvalidTransition(f"job {job_id} is {old.status}; only a failed or cancelled job is re-run")
    data = old.input_data or {}
    return create_job(
        assessment_id=old.assessment_id,
        funded_account_id=old.funded_account_id,
        config=data.get("config"),
        trades=data.get("trades"),
        trigger=old.trigger,
        client=old.client,
    )


def start_job(*, job_id: JobId, worker_id: str) -> SimulationJob | None:
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


def complete_job(*, job_id: JobId, result: SimulationResult, claim: Claim | None = None) -> SimulationJob:
    """Store the result of a running job and announce it.

    With ``claim``, only the holder of that claim may finish the job: a worker whose
    job was requeued behind its back (its heartbeat lapsed) cannot overwrite the
    new attempt, so a result is written once.
    """
    return _finish(job_id, JobStatus.COMPLETED, claim=claim, result=result.to_dict(), summary=result.summary())


def fail_job(*, job_id: JobId, error: str, claim: Claim | None = None) -> SimulationJob:
    """Mark a pending or running job failed with a reason, and announce it."""
    return _finish(job_id, JobStatus.FAILED, claim=claim, error=error[:4000])


def cancel_job(*, job_id: JobId, client: ApiClient | None = None) -> SimulationJob:
    """Cancel a pending or running job, and announce it (a 'completed' event with status
    ``cancelled``). Final at once: nothing can claim or finish the job afterwards, and
    a worker running it stops at its next progress write (``record_progress`` tells it
    the job is no longer its own), within ``SIMULATION_PROGRESS_INTERVAL`` and a chunk
    of paths. A finished job raises :class:`InvalidTransition`."""
    try:
        job_id = uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFound(f"no simulation job {job_id}") from None
    if (
        client is not None
        and not client.sees_every_job
        and not SimulationJob.objects.filter(pk=job_id, client=client).exists()
    ):
        raise JobNotFound(f"no simulation job {job_id}")  # another client's job is not there for this one
    return _finish(job_id, JobStatus.CANCELLED, error="cancelled by request")


def record_progress(*, job_id: JobId, paths_done: int, paths_total: int, claim: Claim | None = None) -> bool:
    """Progress of a running job (no event: it is not a state change). False when the
    job is no longer running (under ``claim``, if given): cancelled, or requeued."""
    guard = {"worker_id": claim[0], "attempts": claim[1]} if claim is not None else {}
    return bool(
        SimulationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, **guard).update(
            paths_done=paths_done, paths_total=paths_total
        )
    )


def _finish(
    job_id: JobId,
    status: str,
    *,
    claim: Claim | None = None,
    result: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    error: str = "",
) -> SimulationJob:
    allowed_from = [JobStatus.RUNNING] if status == JobStatus.COMPLETED else [JobStatus.PENDING, JobStatus.RUNNING]
    now = timezone.now()
    guard: dict[str, Any] = {}
    if claim is not None:
        guard = {"status": JobStatus.RUNNING, "worker_id": claim[0], "attempts": claim[1]}
    with transaction.atomic():
        changed = SimulationJob.objects.filter(pk=job_id, status__in=allowed_from, **guard).update(
            status=status,
            result=result,
            summary=summary,
            error=error,
            completed_at=now,
            updated_at=now,
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


def _check_key(key: str | None, errors: dict[str, list[str]]) -> None:
    if key is not None and (len(key) > IDEMPOTENCY_KEY_MAX or "\x00" in key):
        errors["Idempotency-Key"] = [f"at most {IDEMPOTENCY_KEY_MAX} characters, and no NUL"]


def _nul_errors(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    """Strings (keys too) with a NUL character, which PostgreSQL's JSON cannot store, by path."""
    return {path: ["must not contain a NUL character"] for name, v in fields.items() for path in nul_paths(v, name)}


def _parse_config(config: Mapping[str, Any] | None, errors: dict[str, list[str]]) -> SimulationConfig | None:
    if config is not None and not isinstance(config, Mapping):
        errors["config"] = ["must be an object"]
        return None
    try:
        return SimulationConfig.from_dict(snake_keys(config), engine_limits())
    except EngineValidationError as exc:
        for field, reasons in exc.errors.items():
            errors[f"config.{field}"] = reasons
        return None


def _check_trades(trades: Any, config: SimulationConfig | None, errors: dict[str, list[str]]) -> float:
    """Record what is wrong with inline trades; return the samples the run will draw."""
    if not isinstance(trades, list):
        errors["trades"] = ["must be a list of trades"]
        return 0.0
    try:
        history = TradeHistory.from_records(trades)
        history.validate(mode=config.mode if config else "pnl", max_history=settings.SIMULATION_MAX_TRADES)
        if config is not None:  # what the worker would refuse, refused now: the sizes, the rules' needs
            return check(history, config, engine_limits())
    except EngineValidationError as exc:
        for field, reasons in exc.errors.items():
            errors[field if field.startswith("trades") else f"config.{field}"] = reasons
    return 0.0


def _replay(existing: SimulationJob, fingerprint: str) -> SimulationJob:
    if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used for a different request")
    return existing


def _clean_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
