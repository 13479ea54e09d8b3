"""Jobs nobody asked for over HTTP: completed assessments (Kafka) and the daily run."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping, Optional

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from simulations.engine import SimulationConfig
from simulations.errors import IdempotencyConflict
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services.jobs import create_job, engine_limits, enqueue_job
from workers import metrics


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
