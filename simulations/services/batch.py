"""Finishing many jobs in one transaction: the batch writer's flush.

A ``JobChange`` is one job's end state (completed with a result, or failed with a
reason). ``finish_jobs`` applies a list of them and writes their outbox events in
one transaction of two statements on PostgreSQL:

    COPY the changes into a temporary table (binary; results compressed by the tasks)
    WITH done AS (UPDATE simulationjob ... FROM that table
                  WHERE <the transition is allowed> RETURNING ...)
    INSERT INTO eventoutbox SELECT <the events of exactly the jobs in done>

so a batch costs two round trips however large it is, and a failure anywhere
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
from typing import Any, NamedTuple, Optional

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from simulations import events
from simulations.errors import InvalidTransition, JobNotFound
from simulations.fields import compress_json
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
    # The result as stored (compressed JSON, ``simulations/fields.py``) and the summary
    # as JSON text, encoded by the task that computed them rather than in the flush that
    # every task waits for.
    result_blob: Optional[bytes] = None
    summary_json: Optional[str] = None

    def encode(self) -> "JobChange":
        """Encode the result and summary now; NaN or infinity is refused (it is not JSON)."""
        if self.result is not None and self.result_blob is None:
            self.result_blob = compress_json(self.result)
        if self.summary is not None and self.summary_json is None:
            self.summary_json = json.dumps(self.summary, allow_nan=False)
        return self


_CHANGES_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS mc_job_changes (
    id uuid, status text, result bytea, error text, started_at timestamptz,
    completed_at timestamptz, worker_id text, attempts integer, from_pending boolean, summary json
) ON COMMIT DELETE ROWS
"""

_APPLY = """
UPDATE simulations_simulationjob AS j SET
    status = c.status,
    result = c.result,
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

# The update and its events in one statement: the payloads are built by PostgreSQL,
# exactly as ``events.started_payload`` / ``events.completed_payload`` build them
# (``tests/workers/test_batching.py`` compares the two), so no row goes back and forth.
# Events are numbered in (job, started-before-completed) order for the relay.
_APPLY_WITH_EVENTS = """
WITH done AS (
""" + _APPLY.strip() + """, c.from_pending, c.summary
), events AS (
    INSERT INTO simulations_eventoutbox (job_id, topic, key, payload, created_at, attempts, last_error)
    SELECT d.id, e.topic, COALESCE(d.assessment_id, d.funded_account_id), e.payload, now(), 0, ''
    FROM done AS d CROSS JOIN LATERAL (VALUES
        (1, %(started)s, d.from_pending AND d.attempts = 1, json_build_object(
            'jobId', d.id, 'assessmentId', d.assessment_id, 'fundedAccountId', d.funded_account_id,
            'timestamp', now())),
        (2, %(completed)s, true, json_build_object(
            'jobId', d.id, 'assessmentId', d.assessment_id, 'fundedAccountId', d.funded_account_id,
            'status', d.status, 'summary', d.summary, 'error', NULLIF(d.error, ''), 'timestamp', now()))
    ) AS e(position, topic, wanted, payload)
    WHERE e.wanted
    ORDER BY d.id, e.position
)
SELECT id, status FROM done
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
        _copy_rows(cursor, _CHANGES_COPY, _CHANGES_TYPES,
                   ((c.job_id, c.status, c.encode().result_blob, c.error, c.started_at, c.completed_at,
                     c.worker_id, c.attempt, c.from_pending, c.summary_json)
                    for c in by_id.values()))
        # Autovacuum never sees a temp table: without statistics the planner guessed
        # thousands of changes and scanned every job for a worker's batch of 64 (a cost
        # growing with the table), or looped over the job table against the changes.
        # Analysed (~1 ms), it looks each job up by primary key. (PostgreSQL's advice for
        # temp tables; turning join methods off instead still let a bad plan through.)
        cursor.execute("ANALYZE mc_job_changes")
        cursor.execute(_APPLY_WITH_EVENTS, {"started": events.SIMULATION_STARTED,
                                            "completed": events.SIMULATION_COMPLETED})
        written = cursor.fetchall()
        _count([status for _, status in written])
    return {job_id for job_id, _ in written}


# Binary COPY: psycopg packs each row in C, several times faster than the text format
# (measured: ~3 against ~20 µs a row); the column types must be named for it.
_CHANGES_COPY = ("COPY mc_job_changes (id, status, result, error, started_at, completed_at, worker_id, attempts,"
                 " from_pending, summary) FROM STDIN (FORMAT BINARY)")
_CHANGES_TYPES = ["uuid", "text", "bytea", "text", "timestamptz", "timestamptz", "text", "int4", "bool", "text"]


def _copy_rows(cursor, statement: str, types: list[str], rows) -> None:
    with cursor.cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def finish_jobs_executemany(changes: list[JobChange]) -> set[uuid.UUID]:
    """The same as ``finish_jobs`` with one pipelined UPDATE per change (kept for the benchmark)."""
    by_id = {c.job_id: c for c in changes}
    written = []
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        raw.executemany(
            _APPLY.replace("FROM mc_job_changes AS c", "FROM (SELECT %s::uuid AS id, %s::text AS status,"
                           " %s::bytea AS result, %s::text AS error, %s::timestamptz AS started_at,"
                           " %s::timestamptz AS completed_at, %s::text AS worker_id, %s::int AS attempts,"
                           " %s::boolean AS from_pending) AS c"),
            [(c.job_id, c.status, c.encode().result_blob, c.error, c.started_at,
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
        _count([row[3] for row in written])
    return {row[0] for row in written}


class _WrittenJob(NamedTuple):
    """A row of ``_APPLY ... RETURNING``: what the events need to know of a job."""

    id: uuid.UUID
    assessment_id: Optional[str]
    funded_account_id: Optional[str]
    status: str
    error: str
    attempts: int


def _outbox_rows(written: list[tuple], by_id: dict[uuid.UUID, JobChange]) -> list[tuple]:
    """Outbox rows with their payloads as dicts (the COPY encodes them as jsonb)."""
    now = timezone.now()
    rows = []
    for job in map(_WrittenJob._make, written):
        change = by_id[job.id]
        key = events.event_key(job)
        if change.from_pending and job.attempts == 1:  # it never announced a start: do it now
            rows.append((job.id, events.SIMULATION_STARTED, key, Jsonb(events.started_payload(job, now)), now, 0, ""))
        payload = events.completed_payload(job, change.summary, now)
        rows.append((job.id, events.SIMULATION_COMPLETED, key, Jsonb(payload), now, 0, ""))
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


def _count(statuses: list[str]) -> None:
    transaction.on_commit(lambda: _count_statuses(statuses))


def _count_statuses(statuses: list[str]) -> None:
    for status in statuses:
        metrics.JOBS_FINISHED.labels(status=status).inc()
