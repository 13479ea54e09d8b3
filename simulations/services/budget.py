"""Work budgets: how many trade samples an API client may have queued and unfinished.

A job's ``samples_planned`` is what its run draws at most (``engine.planned_samples``).
Submitting takes the client's budget lock (a PostgreSQL advisory lock held to the end
of the transaction), sums its pending and running jobs (from the partial index
``job_client_unfinished``) and refuses what would go above the budget, so two concurrent
submits cannot both slip under it. Two statements, not one: the sum must be read by a
statement that starts after the lock is granted, or it would miss the jobs of the
submit it waited for. An advisory lock, not ``SELECT … FOR UPDATE`` on the client's
row: that marks the row, a write, and measured 0.75 against ≈ 0.2 ms a submit.

The system client is not budgeted: its jobs are the platform's own (Kafka events, the
daily run), and refusing them would only move the work to a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Sum

from simulations.errors import InvalidInput, WorkBudgetExceeded
from simulations.models import ApiClient, JobStatus, SimulationJob

BUDGET_LOCK = 0x4D43_4200  # the advisory locks' first key: "MCB", the budgets' namespace


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
    if connection.vendor == "postgresql":  # SQLite (the quick start) writes one at a time anyway
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [BUDGET_LOCK, client.pk])
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
