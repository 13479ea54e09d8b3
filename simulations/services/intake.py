"""Jobs nobody asked for over HTTP: completed assessments (Kafka) and the daily run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from simulations import log_context, metrics
from simulations.engine import SimulationConfig
from simulations.errors import IdempotencyConflict, InvalidInput
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services.access import system_client
from simulations.services.batch import insert_jobs
from simulations.services.dispatch import enqueue_job, enqueue_jobs
from simulations.services.jobs import build_job, create_job, engine_limits, fail_job
from simulations.services.rule_sets import RuleSets
from simulations.wire import snake_keys


@dataclass(frozen=True)
class CompletedAssessment:
    """One ``assessment.completed`` event, as the bridge parsed it."""

    assessment_id: str
    funded_account_id: str | None = None
    config: Mapping[str, Any] | None = None
    request_id: str | None = None  # the event's, else the one in context
    rule_set: str | None = None  # a rule set's name: its rules are the job's


def _assessment_key(assessment_id: str) -> str:
    return f"assessment-completed:{assessment_id}"


def create_jobs_for_completed_assessments(
    assessments: Sequence[CompletedAssessment],
) -> list[SimulationJob | InvalidInput]:
    """The bridge's poll batch at once: one job per assessment, as one event at a time would.

    One query finds the assessments that have a job already, one INSERT creates the
    others, and their tasks go out over one broker connection after the commit;
    pending jobs that existed are enqueued again (see the single-event version).
    Returns, per event in order, its job or the validation error that keeps it out
    (for the dead-letter queue). If another bridge inserts one of these assessments
    meanwhile, the batch falls back to one event at a time, which resolves the race.
    """
    outcomes: list[SimulationJob | InvalidInput] = []
    new: dict[str, SimulationJob] = {}
    system, rule_sets = system_client(), RuleSets()
    for event in assessments:
        key = _assessment_key(event.assessment_id)
        try:
            job = new.get(key) or build_job(
                assessment_id=event.assessment_id,
                funded_account_id=event.funded_account_id,
                config=_event_config(event.config, event.rule_set),
                trigger=JobTrigger.KAFKA,
                idempotency_key=key,
                client=system,
                request_id=event.request_id,
                rule_set=event.rule_set,
                rule_sets=rule_sets,
            )
        except InvalidInput as exc:
            outcomes.append(exc)
            continue
        outcomes.append(new.setdefault(key, job))
    found = SimulationJob.objects.filter(client=system, idempotency_key__in=list(new))
    existing = {job.idempotency_key: job for job in found}
    inserted = [job for key, job in new.items() if key not in existing]
    stale = [job.id for job in existing.values() if job.status == JobStatus.PENDING]
    try:
        with transaction.atomic():
            insert_jobs(inserted)
            transaction.on_commit(lambda: enqueue_jobs([job.id for job in inserted] + stale))
    except IntegrityError:
        return [
            outcome
            if isinstance(outcome, InvalidInput)
            else create_job_for_completed_assessment(
                assessment_id=event.assessment_id,
                funded_account_id=event.funded_account_id,
                config=event.config,
                request_id=event.request_id,
                rule_set=event.rule_set,
            )
            for outcome, event in zip(outcomes, assessments, strict=True)
        ]
    metrics.JOBS_CREATED.labels(trigger=JobTrigger.KAFKA).inc(len(inserted))
    return [existing.get(o.idempotency_key, o) if isinstance(o, SimulationJob) else o for o in outcomes]


def create_job_for_completed_assessment(
    *,
    assessment_id: str,
    funded_account_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    rule_set: str | None = None,
) -> SimulationJob:
    """One job per completed assessment, however often its event is delivered.

    The idempotency key is the assessment, so a redelivered (or re-published) event
    returns the first job. If that job is still pending its task may have been lost
    (the broker refused it after the row committed), so it is enqueued again: a
    duplicate task is harmless, a missing one is not.
    """
    key, system = _assessment_key(assessment_id), system_client()
    existing = SimulationJob.objects.filter(client=system, idempotency_key=key).first()
    if existing is None:
        try:
            return create_job(
                assessment_id=assessment_id,
                funded_account_id=funded_account_id,
                config=_event_config(config, rule_set),
                trigger=JobTrigger.KAFKA,
                idempotency_key=key,
                client=system,
                request_id=request_id,
                rule_set=rule_set,
            )
        except IdempotencyConflict:  # the same assessment again, with other details: still one job
            existing = SimulationJob.objects.get(client=system, idempotency_key=key)
    if existing.status == JobStatus.PENDING:
        enqueue_job(job_id=existing.id)
    return existing


def _event_config(config: Mapping[str, Any] | None, rule_set: str | None) -> Mapping[str, Any]:
    """An event's config, else the default; a rule set, if named, brings the rules."""
    if config is not None:
        return config
    default = snake_keys(dict(settings.DEFAULT_JOB_CONFIG))
    if rule_set is not None:  # what the rule set sets, it sets alone
        for name in ("rules", "phases", "starting_balance"):
            default.pop(name, None)
    return default


def create_daily_funded_jobs(
    *, run_date: dt.date, account_ids: Iterable[str], rule_sets: Mapping[str, str] | None = None
) -> list[SimulationJob]:
    """The daily run: a job for every funded account without a job in the last 24 hours,
    under the rule set the Core Service names for it (``rule_sets``: account -> name), or
    the default config. An account whose rule set does not exist gets a job failed with
    that reason, so an operator sees it.

    A unique constraint on (account, run date, trigger) makes a second beat, a re-run
    the same day or two runs at once create nothing new: the rows go in with one
    INSERT ... ON CONFLICT DO NOTHING per 1,000, and a conflict means someone else
    already made that job (a concurrent run waits for the other's commit, in the same
    account order, so neither deadlocks). The candidates found by id afterwards are
    the ones made here: only they are sent, several per message, after commit (an INSERT
    and a savepoint per account was five times slower).
    """
    since = timezone.now() - dt.timedelta(hours=24)
    ids = {str(a) for a in account_ids}
    recent = set(
        SimulationJob.objects.filter(funded_account_id__in=ids, created_at__gte=since).values_list(
            "funded_account_id", flat=True
        )
    )
    config = snake_keys(dict(settings.DEFAULT_JOB_CONFIG))
    parsed = SimulationConfig.from_dict(config, engine_limits())  # a bad setting fails loudly, here
    system, request_id = system_client(), log_context.current_request_id()
    named, lookup, refused = dict(rule_sets or {}), RuleSets(), {}
    candidates = []
    for account in sorted(ids - recent):
        job = SimulationJob(
            client=system,
            funded_account_id=account,
            trigger=JobTrigger.SCHEDULE,
            run_date=run_date,
            input_data={"config": config, "trades": None},
            paths_total=0 if parsed.paths == "auto" else int(parsed.paths),
            request_id=request_id,
        )
        if named.get(account):
            errors: dict[str, list[str]] = {}
            job.rule_set, applied = lookup.apply(named[account], _event_config(None, named[account]), errors)
            if applied is not None:
                job.input_data = {"config": applied, "trades": None}
            else:
                refused[job.id] = f"rule set {named[account]!r} from the Core Service: {errors['ruleSet'][0]}"
        candidates.append(job)
    created: list[SimulationJob] = []
    with transaction.atomic():
        SimulationJob.objects.bulk_create(candidates, batch_size=1_000, ignore_conflicts=True)
        for lo in range(0, len(candidates), 1_000):
            chunk = candidates[lo : lo + 1_000]
            mine = set(SimulationJob.objects.filter(id__in=[j.id for j in chunk]).values_list("id", flat=True))
            created += [j for j in chunk if j.id in mine]
        for job in created:
            if job.id in refused:
                fail_job(job_id=job.id, error=refused[job.id])
        runnable = [j.id for j in created if j.id not in refused]
        if runnable:
            transaction.on_commit(lambda: enqueue_jobs(runnable))
    if created:
        metrics.JOBS_CREATED.labels(trigger=JobTrigger.SCHEDULE).inc(len(created))
    return created
