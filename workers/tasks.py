"""Thin Celery tasks: load by id, call a service. Names are explicit and never change
(a renamed task orphans queued messages; a test pins the registered names)."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.utils import timezone

from simulations import metrics, selectors, services, task_names
from simulations.clients import CoreServiceError, core_service_client
from simulations.process import worker_id
from workers import heartbeat, held, last_success
from workers.batching import BatchWriteFailed, process_writer

logger = logging.getLogger(__name__)


@shared_task(name=task_names.RUN_SIMULATION, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_simulation(job_id: str) -> None:
    """Run one job; a duplicate delivery finds nothing to do. If its result could not
    be written, the message goes back to the queue instead of being acknowledged."""
    try:
        services.run_job(
            job_id=job_id,
            worker_id=worker_id(),
            is_alive=heartbeat.is_alive,
            max_attempts=settings.SIMULATION_MAX_ATTEMPTS,
            write=process_writer().write,
            parallel=settings.ENGINE_PARALLEL,
        )
    except BatchWriteFailed as exc:
        raise Reject(f"result not written, redeliver: {exc}", requeue=True) from exc


@shared_task(name=task_names.RUN_SIMULATIONS, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_simulations(job_ids: list[str]) -> None:
    """Run a batch of jobs sent as one message (bulk intake); small ones are written
    together. If their results could not be written, the message goes back to the queue."""
    try:
        services.run_small_jobs(
            job_ids=job_ids,
            worker_id=worker_id(),
            write=process_writer().write_many,
            parallel=settings.ENGINE_PARALLEL,
            is_alive=heartbeat.is_alive,
            max_attempts=settings.SIMULATION_MAX_ATTEMPTS,
        )
    except BatchWriteFailed as exc:
        raise Reject(f"results not written, redeliver: {exc}", requeue=True) from exc


@shared_task(
    name=task_names.RUN_PENDING_JOBS, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_pending_jobs(self) -> int:
    """A wake-up: take pending API jobs and run them together (simulations.services.dispatch).
    A redelivery (its worker died) takes the same jobs again under the same task id; if
    their results could not be written, the message goes back to the queue."""
    try:
        return services.run_pending_jobs(
            token=self.request.id,
            worker_id=worker_id(),
            write=process_writer().write_many,
            limit=settings.SIMULATION_TASK_BATCH,
            wake=services.wake_workers,
            parallel=settings.ENGINE_PARALLEL,
            is_alive=heartbeat.is_alive,
            max_attempts=settings.SIMULATION_MAX_ATTEMPTS,
        )
    except BatchWriteFailed as exc:
        raise Reject(f"results not written, redeliver: {exc}", requeue=True) from exc


@shared_task(name=task_names.SWEEP_STALE_JOBS, ignore_result=True, expires=60)
def sweep_stale_jobs() -> int:
    """Requeue running jobs whose worker's heartbeat expired, re-send the pending jobs
    whose messages a dead worker held and free those its takes reserved, re-send jobs
    pending for too long, and wake the workers for API jobs left waiting (beat, every 30 s)."""
    jobs = services.requeue_jobs_of_dead_workers(
        is_alive=heartbeat.is_alive,
        max_attempts=settings.SIMULATION_MAX_ATTEMPTS,
        grace_seconds=settings.WORKER_HEARTBEAT_TTL,
    )
    requeued = len(jobs)
    dead = held.orphans(older_than=settings.WORKER_HEARTBEAT_TTL)
    for worker, what in dead.items():
        requeued += services.reenqueue_held_by_dead_worker(job_ids=what.jobs, dead_worker_id=worker)
        requeued += services.release_takes_of_dead_worker(tokens=what.takes, dead_worker_id=worker)
    held.forget(dead)
    requeued += services.reenqueue_stale_pending(older_than_seconds=settings.PENDING_REQUEUE_AFTER)
    services.wake_for_waiting_api_jobs()
    last_success.mark(last_success.SWEEP)
    return requeued


@shared_task(name=task_names.BUILD_BOOK_REPORTS, ignore_result=True, expires=300)
def build_book_reports() -> int:
    """The book reports of the recent daily runs whose jobs changed (beat, every 5 min);
    the drift gauge follows the latest run's report."""
    reports = services.build_due_book_reports()
    latest = selectors.latest_book_report()
    if latest is not None:  # set every round: a restarted worker serves it again
        metrics.BREACH_DRIFT_ACCOUNTS.set(len(latest.drifted))
    return len(reports)


@shared_task(
    name=task_names.SCHEDULE_DAILY_FUNDED_RUNS,
    ignore_result=True,
    autoretry_for=(CoreServiceError,),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=8,
)
def schedule_daily_funded_runs(run_date: str | None = None) -> int:
    """A job for every active funded account without one in the last 24 h (beat, daily).

    ``run_date`` (ISO, UTC) defaults to today in UTC; only the Core Service call is
    retried, and a retry cannot double anything (one run per account and day).
    """
    day = dt.date.fromisoformat(run_date) if run_date else timezone.now().astimezone(dt.UTC).date()
    accounts = list(core_service_client().active_funded_accounts())
    created = services.create_daily_funded_jobs(
        run_date=day,
        account_ids=[a.id for a in accounts],
        rule_sets={a.id: a.rule_set for a in accounts if a.rule_set},
    )
    last_success.mark(last_success.DAILY_RUN)
    logger.info("daily run %s: %d accounts, %d new jobs", day, len(accounts), len(created))
    return len(created)
