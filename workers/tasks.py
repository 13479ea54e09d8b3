"""Thin Celery tasks: load by id, call a service. Names are explicit and never change
(a renamed task orphans queued messages; a test pins the registered names)."""

from __future__ import annotations

from celery import shared_task

from simulations import services
from workers.identity import worker_id


@shared_task(
    name="montecarlo.run_simulation",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_simulation(job_id: str) -> None:
    """Claim and run one job; a duplicate delivery finds nothing to claim."""
    services.run_job(job_id=job_id, worker_id=worker_id())
