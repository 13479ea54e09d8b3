"""Finishing many jobs in one transaction: the batch writer's flush.

A ``JobChange`` is one job's end state (completed with a result, or failed with a
reason). ``finish_jobs`` applies a list of them and writes their outbox events in
one transaction, with one statement per table on PostgreSQL:

    COPY the changes into a temporary table (results as text, parsed once below)
    UPDATE simulationjob ... FROM that table WHERE <the transition is allowed> RETURNING
    COPY the outbox rows of exactly the jobs that changed

so a batch costs three round trips however large it is, and a failure anywhere
leaves nothing of it behind. Guards are the same as for one job: a change from
``pending`` (a small job run without a claim) applies only if the job is still
pending; a change from ``running`` only if the claim (worker, attempt) still holds.
Jobs whose guard failed are left alone and reported as not written.

SQLite (the quick start) falls back to the one-job services (claim, then finish),
still in one transaction. ``finish_jobs_executemany`` is the other PostgreSQL strategy that
was measured (``benchmarks/batch_writes.py``); COPY won.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

from django.db import connection, transaction
from django.utils import timezone

from simulations import events
from simulations.errors import InvalidTransition, JobNotFound
from simulations.models import SimulationJob
from workers import metrics


@dataclass
class JobChange:
    """One job's end state, as a worker computed it."""

    job_id: uuid.UUID
    status: str  # completed | failed
    worker_id: str
    started_at: dt.datetime
    completed_at: dt.datetime = field(default_factory=timezone.now)
    result: Optional[dict[str, Any]] = None
    summary: Optional[dict[str, Any]] = None
    error: str = ""
    from_pending: bool = True  # False: the job was claimed (running) by (worker_id, attempt)
    attempt: int = 0
    # The result as JSON, encoded by the task that computed it (in parallel with other
    # tasks) rather than in the flush that every task waits for.
    result_json: Optional[str] = None

    def encode(self) -> "JobChange":
        """Encode the result now; NaN or infinity is not JSON (PostgreSQL refuses it)."""
        if self.result is not None and self.result_json is None:
            self.result_json = json.dumps(self.result, allow_nan=False)
        return self


_CHANGES_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS mc_job_changes (
    id uuid PRIMARY KEY, status text, result text COMPRESSION lz4, error text, started_at timestamptz,
    completed_at timestamptz, worker_id text, attempts integer, from_pending boolean
) ON COMMIT DELETE ROWS
"""

_APPLY = """
UPDATE simulations_simulationjob AS j SET
    status = c.status,
    result = c.result::jsonb,  -- parsed once, straight into the job row
    error = c.error,
    started_at = COALESCE(j.started_at, c.started_at),
    completed_at = c.completed_at,
    worker_id = c.worker_id,
    attempts = CASE WHEN c.from_pending THEN j.attempts + 1 ELSE j.attempts END,
    paths_done = CASE WHEN c.status = 'completed' THEN j.paths_total ELSE j.paths_done END,
    updated_at = now()
FROM mc_job_changes AS c
WHERE j.id = c.id AND (
    (c.from_pending AND j.status = 'pending')
    OR (NOT c.from_pending AND j.status = 'running' AND j.worker_id = c.worker_id AND j.attempts = c.attempts)
)
RETURNING j.id, j.assessment_id, j.funded_account_id, j.status, j.error, j.attempts
"""


def finish_jobs(changes: list[JobChange]) -> set[uuid.UUID]:
    """Apply the changes and their outbox events in one transaction; the ids written."""
    if not changes:
        return set()
    if connection.vendor != "postgresql":
        return _finish_one_by_one(changes)
    by_id = {c.job_id: c for c in changes}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CHANGES_TABLE)
        with cursor.cursor.copy(
            "COPY mc_job_changes (id, status, result, error, started_at, completed_at, worker_id, attempts,"
            " from_pending) FROM STDIN"
        ) as copy:
            for c in by_id.values():
                copy.write_row((c.job_id, c.status, c.encode().result_json, c.error,
                                c.started_at, c.completed_at, c.worker_id, c.attempt, c.from_pending))
        cursor.execute(_APPLY)
        written = cursor.fetchall()
        outbox = _outbox_rows(written, by_id)
        with cursor.cursor.copy(
            "COPY simulations_eventoutbox (job_id, topic, key, payload, created_at, attempts, last_error)"
            " FROM STDIN"
        ) as copy:
            for row in outbox:
                copy.write_row(row)
        _count(written)
    return {row[0] for row in written}


def finish_jobs_executemany(changes: list[JobChange]) -> set[uuid.UUID]:
    """The same as ``finish_jobs`` with one pipelined UPDATE per change (kept for the benchmark)."""
    by_id = {c.job_id: c for c in changes}
    written = []
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        raw.executemany(
            _APPLY.replace("FROM mc_job_changes AS c", "FROM (SELECT %s::uuid AS id, %s::text AS status,"
                           " %s::jsonb AS result, %s::text AS error, %s::timestamptz AS started_at,"
                           " %s::timestamptz AS completed_at, %s::text AS worker_id, %s::int AS attempts,"
                           " %s::boolean AS from_pending) AS c"),
            [(c.job_id, c.status, c.encode().result_json, c.error, c.started_at,
              c.completed_at, c.worker_id, c.attempt, c.from_pending) for c in by_id.values()],
            returning=True,
        )
        while True:
            written.extend(raw.fetchall())
            if not raw.nextset():
                break
        raw.executemany(
            "INSERT INTO simulations_eventoutbox (job_id, topic, key, payload, created_at, attempts, last_error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)", _outbox_rows(written, by_id))
        _count(written)
    return {row[0] for row in written}


def _outbox_rows(written: list[tuple], by_id: dict[uuid.UUID, JobChange]) -> list[tuple]:
    now = timezone.now()
    rows = []
    for job_id, assessment_id, account_id, status, error, attempts in written:
        change = by_id[job_id]
        job = SimulationJob(id=job_id, assessment_id=assessment_id, funded_account_id=account_id,
                            status=status, error=error, attempts=attempts)
        key = events.event_key(job)
        if change.from_pending and attempts == 1:  # it never announced a start: do it now
            rows.append((job_id, events.SIMULATION_STARTED, key, json.dumps(events.started_payload(job)), now, 0, ""))
        payload = events.completed_payload(job, change.summary)
        rows.append((job_id, events.SIMULATION_COMPLETED, key, json.dumps(payload), now, 0, ""))
    return rows


def _finish_one_by_one(changes: list[JobChange]) -> set[uuid.UUID]:
    """SQLite: the same guards and events through the one-job services, in one transaction."""
    from simulations.services.jobs import _finish, start_job  # jobs imports nothing from here

    written = set()
    with transaction.atomic():
        for c in changes:
            try:
                with transaction.atomic():
                    attempt = c.attempt
                    if c.from_pending:  # claim now: the job never showed 'running'
                        claimed = start_job(job_id=c.job_id, worker_id=c.worker_id)
                        if claimed is None:
                            continue
                        attempt = claimed.attempts
                    _finish(c.job_id, c.status, claim=(c.worker_id, attempt), result=c.result,
                            summary=c.summary, error=c.error)
            except (InvalidTransition, JobNotFound):
                continue
            written.add(c.job_id)
    return written


def _count(written: list[tuple]) -> None:
    statuses = [row[3] for row in written]
    transaction.on_commit(lambda: _count_statuses(statuses))


def _count_statuses(statuses: list[str]) -> None:
    for status in statuses:
        metrics.JOBS_FINISHED.labels(status=status).inc()
