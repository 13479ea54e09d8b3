"""Work budgets: how many trade samples an API client may have queued and unfinished.

A job's ``samples_planned`` is what its run draws at most (``engine.planned_samples``).
Submitting takes the client's budget lock (a PostgreSQL advisory lock held to the end
of the transaction), sums its pending and running jobs (from the partial index
``job_client_unfinished``) and refuses what would go above the budget, so two concurrent
submits cannot both slip under it. Two statements, not one: the sum must be read by a
statement that starts after the lock is granted, or it would miss the jobs of the
submit it waited for. On PostgreSQL both go in one simple query (one round trip; each
statement of it takes its own snapshot), written out rather than built by the ORM:
1.8 → 0.6 ms of the web process's CPU a submit (benchmarks/api_requests.py). An advisory
lock, not ``SELECT … FOR UPDATE`` on the client's row: that marks the row, a write,
and measured 0.75 against ≈ 0.2 ms a submit.

The system client is not budgeted: its jobs are the platform's own (Kafka events, the
daily run), and refusing them would only move the work to a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import connection

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
    queued = _lock_and_sum_queued(client)
    asked = sum(job.samples_planned for job in jobs)
    budget = budget_of(client)
    if queued + asked > budget:
        raise WorkBudgetExceeded(queued=queued, asked=asked, budget=budget, own=client.work_budget is not None)


# the partial index job_client_unfinished answers it from its own pages
_QUEUED = (
    f'SELECT COALESCE(SUM("samples_planned"), 0) FROM "{SimulationJob._meta.db_table}"'
    f""" WHERE "client_id" = %s AND "status" IN ('{JobStatus.PENDING}', '{JobStatus.RUNNING}')"""
)


def _lock_and_sum_queued(client: ApiClient) -> int:
    """Take the client's budget lock and read its queued samples after it is granted.
    (Two statements in one ``execute`` need psycopg's client-side binding, Django's
    default; ``server_side_binding`` would refuse them.)"""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT pg_advisory_xact_lock(%s, %s); {_QUEUED}", [BUDGET_LOCK, client.pk, client.pk])
            cursor.nextset()  # the sum's result, after the lock's
        else:  # SQLite (the quick start) writes one at a time anyway
            cursor.execute(_QUEUED, [client.pk])
        return int(cursor.fetchone()[0])
