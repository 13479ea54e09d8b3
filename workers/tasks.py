"""Thin Celery tasks: load by id, call a service. Names are explicit and never change
(a renamed task orphans queued messages; a test pins the registered names)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from simulations import services
from workers import heartbeat
from workers.identity import worker_id


@shared_task(name="montecarlo.run_simulation", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_simulation(job_id: str) -> None:
    """Claim and run one job; a duplicate delivery finds nothing to claim."""
    services.run_job(job_id=job_id, worker_id=worker_id(), is_alive=heartbeat.is_alive,
                     max_attempts=settings.SIMULATION_MAX_ATTEMPTS)


@shared_task(name="montecarlo.sweep_stale_jobs", ignore_result=True, expires=60)
def sweep_stale_jobs() -> int:
    """Requeue running jobs whose worker's heartbeat expired (beat, every 30 s)."""
    jobs = services.requeue_jobs_of_dead_workers(
        is_alive=heartbeat.is_alive, max_attempts=settings.SIMULATION_MAX_ATTEMPTS,
        grace_seconds=settings.WORKER_HEARTBEAT_TTL,
    )
    return len(jobs)
