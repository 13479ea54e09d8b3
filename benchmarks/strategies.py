"""Write strategies that are measured but not used by the service: kept here so the
batch_writes benchmark can compare them and the tests can prove they write the same."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from simulations import events
from simulations.services.batch import _APPLY, JobChange, _binding_cursor, _count, _row


def finish_jobs_executemany(changes: list[JobChange]) -> set[uuid.UUID]:
    """`finish_jobs` with one pipelined UPDATE per change, and the outbox rows built in Python."""
    by_id = {c.job_id: c for c in changes}
    written = []
    with transaction.atomic(), _binding_cursor() as cursor:
        cursor.executemany(
            _APPLY.replace(
                "{changes}",
                "(SELECT %s::uuid AS id, %s::text AS status,"
                " %s::bytea AS result, %s::text AS error, %s::timestamptz AS started_at,"
                " %s::timestamptz AS completed_at, %s::text AS worker_id, %s::int AS attempts,"
                " %s::boolean AS from_pending, %s::json AS summary) AS c",
            ),
            [_row(c) for c in by_id.values()],
            returning=True,
        )
        while True:
            written.extend(cursor.fetchall())
            if not cursor.nextset():
                break
        cursor.executemany(
            "INSERT INTO simulations_eventoutbox (job_id, topic, key, payload, created_at, attempts, last_error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            _outbox_rows(written, by_id),
        )
        _count([row[3] for row in written])
    return {row[0] for row in written}


class _WrittenJob(NamedTuple):
    """A row of ``_APPLY ... RETURNING``: what the events need to know of a job."""

    id: uuid.UUID
    assessment_id: str | None
    funded_account_id: str | None
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
