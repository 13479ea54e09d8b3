"""Work budgets: how many trade samples an API client may have queued and unfinished.

A job's ``samples_planned`` is what its run draws at most (``engine.planned_samples``).
Submitting locks the client's row, sums its pending and running jobs (from the partial
index ``job_client_unfinished``) and refuses what would go above the budget, so two
concurrent submits cannot both slip under it. The system client is not budgeted: its
jobs are the platform's own (Kafka events, the daily run), and refusing them would
only move the work to a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db.models import Sum

from simulations.errors import InvalidInput, WorkBudgetExceeded
from simulations.models import ApiClient, JobStatus, SimulationJob


def budget_of(client: ApiClient) -> int:
    return client.work_budget if client.work_budget is not None else settings.API_CLIENT_MAX_QUEUED_SAMPLES


def check_batch_size(jobs: Sequence[SimulationJob]) -> None:
    """A batch's total samples above ``API_BATCH_MAX_SAMPLES`` is a 400 (however the budget stands)."""
    total = sum(job.samples_planned for job in jobs)
    limit = settings.API_BATCH_MAX_SAMPLES
    if total > limit:
        raise InvalidInput(
            {"jobs": [f"{total:.3g} trade samples in all, above the batch limit {limit:.3g} (API_BATCH_MAX_SAMPLES)"]}
        )


def reserve(client: ApiClient, jobs: Sequence[SimulationJob]) -> None:
    """Inside the transaction that inserts ``jobs``: raise :class:`WorkBudgetExceeded`
    if the client's queued samples and theirs together exceed its budget."""
    if client.is_system:
        return
    ApiClient.objects.select_for_update().filter(pk=client.pk).values_list("pk").get()
    queued = (
        SimulationJob.objects.filter(client=client, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).aggregate(
            total=Sum("samples_planned")
        )["total"]
        or 0
    )
    asked = sum(job.samples_planned for job in jobs)
    budget = budget_of(client)
    if queued + asked > budget:
        raise WorkBudgetExceeded(queued=queued, asked=asked, budget=budget, own=client.work_budget is not None)
