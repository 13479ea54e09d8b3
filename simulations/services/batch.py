"""Writing many jobs at once: new jobs by one COPY (``insert_jobs``), and finishing
many in one transaction (the batch writer's flush).

A ``JobChange`` is one job's end state (completed with a result, or failed with a
reason). ``finish_jobs`` applies a list of them and writes their outbox events in
one transaction on PostgreSQL, with one statement:

    WITH done AS (UPDATE simulationjob ... FROM <the changes>
                  WHERE <the transition is allowed> RETURNING ...)
    INSERT INTO eventoutbox SELECT <the events of exactly the jobs in done>

The changes come as ten arrays bound as binary parameters and unnested (a batch of
up to ``ARRAYS_UP_TO``), or from a temporary table filled by a binary COPY (a larger
one); results are compressed by the tasks. A failure anywhere leaves nothing of the
batch behind. Guards are the same as for one job: a change from
``pending`` (a small job run without a claim) applies only if the job is still
pending; a change from ``running`` only if the claim (worker, attempt) still holds.
Jobs whose guard failed are left alone and reported as not written.

SQLite (the quick start) falls back to the one-job services (claim, then finish),
still in one transaction. ``benchmarks/batch_writes.py`` measures these against
pipelined per-row UPDATEs and the ORM.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from simulations import events, metrics
from simulations.errors import InvalidTransition, JobNotFound
from simulations.fields import compress_json
from simulations.models import SimulationJob


@dataclass
class JobChange:
    """One job's end state, as a worker computed it."""

    job_id: uuid.UUID
    status: str  # completed | failed
    worker_id: str
    started_at: dt.datetime
    completed_at: dt.datetime = field(default_factory=timezone.now)
    result: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    error: str = ""
    from_pending: bool = True  # False: the job was claimed (running) by (worker_id, attempt)
    attempt: int = 0
    # The result as stored (compressed JSON, ``simulations/fields.py``) and the summary
    # as JSON text, encoded by the task that computed them rather than in the flush that
    # every task waits for.
    result_blob: bytes | None = None
    summary_json: str | None = None

    def encode(self) -> JobChange:
        """Encode the result and summary now; NaN or infinity is refused (it is not JSON)."""
        if self.result is not None and self.result_blob is None:
            self.result_blob = compress_json(self.result)
        if self.summary is not None and self.summary_json is None:
            self.summary_json = json.dumps(self.summary, allow_nan=False)
        return self


_APPLY = """
UPDATE simulations_simulationjob AS j SET
    status = c.status,
    result = c.result,
    summary = c.summary::jsonb,
    error = c.error,
    started_at = COALESCE(j.started_at, c.started_at),
    completed_at = c.completed_at,
    worker_id = c.worker_id,
    attempts = CASE WHEN c.from_pending THEN j.attempts + 1 ELSE j.attempts END,
    paths_done = CASE WHEN c.status = 'completed' THEN j.paths_total ELSE j.paths_done END,
    updated_at = now()
FROM {changes}
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
_APPLY_WITH_EVENTS = (
    """
WITH done AS (
"""
    + _APPLY.strip()
    + """, c.from_pending, c.summary
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
)

# Multi-argument unnest zips the arrays into rows. The planner knows their length when it
# plans (PostgreSQL's unnest support function), so a small batch is never taken for
# thousands of rows that would scan every job (``test_a_flush_looks_jobs_up_by_key...``).
_APPLY_FROM_ARRAYS = _APPLY_WITH_EVENTS.replace(
    "{changes}",
    (
        "unnest(%(id)b::uuid[], %(status)b::text[], %(result)b::bytea[], %(error)b::text[],"
        " %(started_at)b::timestamptz[], %(completed_at)b::timestamptz[], %(worker_id)b::text[],"
        " %(attempts)b::int4[], %(from_pending)b::bool[], %(summary)b::json[])"
        " AS c(id, status, result, error, started_at, completed_at, worker_id, attempts, from_pending, summary)"
    ),
)
_APPLY_FROM_TABLE = _APPLY_WITH_EVENTS.replace("{changes}", "mc_job_changes AS c")
_EVENT_TOPICS = {"started": events.SIMULATION_STARTED, "completed": events.SIMULATION_COMPLETED}


# Up to this many changes (the writer's default batch) a flush sends them as arrays, above
# it by COPY: the arrays save the temp table's fixed cost (create, ANALYZE, truncate at
# commit), COPY may cost less a row; measured equal or faster up to 500 (docs/performance.md).
ARRAYS_UP_TO = 500


def finish_jobs(changes: list[JobChange]) -> set[uuid.UUID]:
    """Apply the changes and their outbox events in one transaction; the ids written."""
    if not changes:
        return set()
    if connection.vendor != "postgresql":
        return _finish_one_by_one(changes)
    return (finish_jobs_arrays if len(changes) <= ARRAYS_UP_TO else finish_jobs_copy)(changes)


def _unique_in_job_order(changes: list[JobChange]) -> list[JobChange]:
    """In job order, so two workers' flushes that share a job (a redelivered task) lock
    their rows in the same order and cannot deadlock."""
    # by the uuid's integer: the same order as comparing UUIDs (and PostgreSQL's bytewise
    # one), without a Python-level __lt__ call per comparison (≈ 500 for 100 changes)
    return sorted({c.job_id: c for c in changes}.values(), key=lambda c: c.job_id.int)


def insert_jobs(jobs: list[SimulationJob]) -> None:
    """Insert new jobs, their ids set (``bulk_create`` without ``RETURNING``): by one
    text COPY on PostgreSQL, each field prepared as the ORM's INSERT prepares it
    (``pre_save``, ``get_db_prep_save``); ``bulk_create`` on SQLite. For 1,000 jobs
    about a third of the web's CPU and half of PostgreSQL's: psycopg parses and quotes
    the INSERT's 25 parameters a job on every call (docs/performance.md). A duplicate
    key raises ``IntegrityError`` as the INSERT would."""
    if not jobs:
        return
    if connection.vendor != "postgresql":
        SimulationJob.objects.bulk_create(jobs)
        return
    fields = SimulationJob._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(SimulationJob._meta.db_table)
    with _binding_cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for job in jobs:
            copy.write_row([field.get_db_prep_save(field.pre_save(job, True), connection) for field in fields])
    for job in jobs:  # saved, as bulk_create leaves them
        job._state.adding, job._state.db = False, connection.alias


def finish_jobs_arrays(changes: list[JobChange]) -> set[uuid.UUID]:
    """One statement, the changes bound as one binary array per column."""
    columns = dict(zip(_COLUMNS, map(list, zip(*map(_row, _unique_in_job_order(changes))))))
    # One statement is one transaction by itself (the UPDATE and the outbox INSERT of its
    # CTE commit or fail together), so outside a caller's transaction it runs in
    # autocommit: one round trip instead of three (BEGIN, statement, COMMIT), measured
    # ≈ 0.5 ms of a 6 ms flush of 100.
    in_transaction = connection.in_atomic_block or not connection.get_autocommit()
    scope = transaction.atomic() if in_transaction else nullcontext()
    with scope, _binding_cursor() as cursor:
        # Not prepared: a generic plan cannot know the arrays' length (measured: it
        # hash-joined a scan of the jobs for 500 changes, ≈ 25% slower than planning anew).
        cursor.execute(_APPLY_FROM_ARRAYS, {**_EVENT_TOPICS, **columns}, prepare=False)
        return _written(cursor.fetchall())


def finish_jobs_copy(changes: list[JobChange]) -> set[uuid.UUID]:
    """A binary COPY into a temporary table, then the same statement over it."""
    with transaction.atomic(), _binding_cursor() as cursor:
        cursor.execute(_CHANGES_TABLE)
        with cursor.copy(_CHANGES_COPY) as copy:
            copy.set_types(_CHANGES_TYPES)
            for change in _unique_in_job_order(changes):
                copy.write_row(_row(change))
        # Autovacuum never analyses a temp table: without statistics the planner guessed
        # thousands of changes and scanned every job even for a batch of 64.
        cursor.execute("ANALYZE mc_job_changes")
        cursor.execute(_APPLY_FROM_TABLE, _EVENT_TOPICS)
        return _written(cursor.fetchall())


def _written(rows: list[tuple]) -> set[uuid.UUID]:
    """The ids of ``SELECT id, status FROM done``, counted by status once committed."""
    _count([status for _, status in rows])
    return {job_id for job_id, _ in rows}


_COLUMNS = (
    "id",
    "status",
    "result",
    "error",
    "started_at",
    "completed_at",
    "worker_id",
    "attempts",
    "from_pending",
    "summary",
)


def _row(c: JobChange) -> tuple:
    """A change as the flush's columns (``_COLUMNS``)."""
    return (
        c.job_id,
        c.status,
        c.encode().result_blob,
        c.error,
        c.started_at,
        c.completed_at,
        c.worker_id,
        c.attempt,
        c.from_pending,
        c.summary_json,
    )


@contextmanager
def _binding_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's connection that sends parameters apart from the query, in
    binary. Django's own cursor binds on the client: it escapes each value into the SQL
    text, ≈ 10 ms for a hundred 1.5 KB results (measured). Errors come out as Django's
    (``OperationalError`` and the rest), as from any Django cursor."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


_CHANGES_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS mc_job_changes (
    id uuid, status text, result bytea, error text, started_at timestamptz,
    completed_at timestamptz, worker_id text, attempts integer, from_pending boolean, summary json
) ON COMMIT DELETE ROWS
"""
_CHANGES_COPY = f"COPY mc_job_changes ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_CHANGES_TYPES = ["uuid", "text", "bytea", "text", "timestamptz", "timestamptz", "text", "int4", "bool", "text"]


def _finish_one_by_one(changes: list[JobChange]) -> set[uuid.UUID]:
    """SQLite: the same guards and events through the one-job services, in one transaction."""
    from simulations.services.jobs import _finish, start_job  # here, not above: jobs imports this module

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
                    _finish(
                        c.job_id,
                        c.status,
                        claim=(c.worker_id, attempt),
                        result=c.result,
                        summary=c.summary,
                        error=c.error,
                    )
            except (InvalidTransition, JobNotFound):
                continue
            written.add(c.job_id)
    return written


def _count(statuses: list[str]) -> None:
    transaction.on_commit(lambda: _count_statuses(statuses))


def _count_statuses(statuses: list[str]) -> None:
    # once per status, not per job: a labels() lookup is ≈ 1.6 µs, 0.16 ms of a flush of 100
    for status, count in Counter(statuses).items():
        metrics.JOBS_FINISHED.labels(status=status).inc(count)
