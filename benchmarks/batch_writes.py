"""Batch writer vs one ORM ``save()`` per row, same rows, same run, real PostgreSQL.

    deploy/bench.sh batch_writes [--sizes 100,1000,10000] [--repeat 3] [--min-rows 10000]
    (starts PostgreSQL, migrates, runs this)

Each "row" is one finished job: its status, its result (a real ~4 KB result document,
stored compressed by simulations/fields.py) and its two outbox events. Strategies:
- ``orm``: per job, ``save()`` the job and ``create()`` two outbox rows, autocommit
  (three round trips and a transaction each);
- ``executemany``: ``finish_jobs_executemany``, pipelined UPDATEs, one transaction per batch;
- ``copy``: ``finish_jobs_copy``, binary COPY into a temp table + one UPDATE ... FROM
  that also inserts the outbox rows, one transaction per batch;
- ``arrays``: ``finish_jobs_arrays``, the same UPDATE ... FROM over ``unnest`` of one
  binary array parameter per column, one transaction per batch.
The writer's flush (``finish_jobs``) takes arrays up to ``ARRAYS_UP_TO`` changes, COPY
above: the last column compares the one it takes for flushes of that size with the ORM.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import time
from collections.abc import Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.report import Report  # noqa: E402
from benchmarks.strategies import finish_jobs_executemany  # noqa: E402
from simulations import events  # noqa: E402
from simulations.engine import SimulationConfig, simulate  # noqa: E402
from simulations.models import EventOutbox, JobStatus, SimulationJob  # noqa: E402
from simulations.services.batch import (  # noqa: E402
    ARRAYS_UP_TO,
    JobChange,
    finish_jobs_arrays,
    finish_jobs_copy,
)

PREFIX = "bench-batch-"


def make_jobs(n: int) -> list[SimulationJob]:
    jobs = [SimulationJob(assessment_id=f"{PREFIX}{i}", input_data={"config": {"paths": 1000}}) for i in range(n)]
    return SimulationJob.objects.bulk_create(jobs, batch_size=2_000)


def changes_for(jobs: list[SimulationJob], result: dict | None, summary: dict | None) -> list[JobChange]:
    """As tasks hand them to the writer: results already encoded by the task threads.
    Without a result, the change is a failure with a short reason (a status update)."""
    now = timezone.now()
    if result is None:
        return [
            JobChange(
                job_id=j.id,
                status=JobStatus.FAILED,
                worker_id="bench:1",
                started_at=now,
                error="Core Service answered with HTTP 503",
            )
            for j in jobs
        ]
    return [
        JobChange(
            job_id=j.id, status=JobStatus.COMPLETED, worker_id="bench:1", started_at=now, result=result, summary=summary
        ).encode()
        for j in jobs
    ]


def orm_per_row(changes: list[JobChange]) -> None:
    for c in changes:
        job = SimulationJob.objects.get(pk=c.job_id)
        job.status, job.result, job.error = c.status, c.result, c.error
        job.started_at, job.completed_at, job.worker_id = c.started_at, c.completed_at, c.worker_id
        job.attempts += 1
        job.save()
        key = events.event_key(job)
        EventOutbox.objects.create(
            job=job, topic=events.SIMULATION_STARTED, key=key, payload=events.started_payload(job)
        )
        EventOutbox.objects.create(
            job=job, topic=events.SIMULATION_COMPLETED, key=key, payload=events.completed_payload(job, c.summary)
        )


def batched(flush: Callable[[list[JobChange]], set], batch: int) -> Callable[[list[JobChange]], None]:
    def run(changes: list[JobChange]) -> None:
        for lo in range(0, len(changes), batch):
            written = flush(changes[lo : lo + batch])
            assert len(written) == len(changes[lo : lo + batch])

    return run


def cleanup() -> None:
    SimulationJob.objects.filter(assessment_id__startswith=PREFIX).delete()


def measure(
    strategies: dict[str, Callable[[list[JobChange]], None]],
    n: int,
    result: dict | None,
    summary: dict | None,
    rounds: int,
) -> dict[str, float]:
    """Best rows/s of each strategy over ``rounds`` rounds, on ``n`` fresh rows each
    time, the strategies taking turns in every round (as in ``benchmarks/engine.py``: a
    slow minute of this shared VM then falls on all of them, not on one). First an
    untimed run of each over 10 other rows: a worker's connection creates the COPY's
    temporary table once, not per batch. As in ``timeit``, the collector is off while timed."""
    for strategy in strategies.values():
        cleanup()
        strategy(changes_for(make_jobs(10), result, summary))
    best = dict.fromkeys(strategies, 0.0)
    for _ in range(rounds):
        for name, strategy in strategies.items():
            cleanup()
            changes = changes_for(make_jobs(n), result, summary)
            gc.disable()
            try:
                started = time.perf_counter()
                strategy(changes)
                elapsed = time.perf_counter() - started
            finally:
                gc.enable()
            assert (
                SimulationJob.objects.filter(assessment_id__startswith=PREFIX, completed_at__isnull=False).count() == n
            )
            assert EventOutbox.objects.filter(job__assessment_id__startswith=PREFIX).count() == 2 * n
            best[name] = max(best[name], n / elapsed)
    return best


def rounds_for(n: int, repeat: int, min_rows: int) -> int:
    """At least ``repeat`` rounds, and enough that every cell times ``min_rows`` rows in
    all (as ``timeit`` picks its loop count): one flush of 100 takes ≈ 5 ms, and a best of
    three such short events says more about this VM's minute than about the flush."""
    return max(repeat, math.ceil(min_rows / n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument(
        "--batch",
        type=int,
        default=settings.BATCH_MAX_ITEMS,
        help="changes per flush (default: the writer's BATCH_MAX_ITEMS)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size at least, the best counts")
    parser.add_argument(
        "--min-rows",
        type=int,
        default=10_000,
        help="more rounds for small sizes, until each cell has timed this many rows",
    )
    args = parser.parse_args()
    out = Report("batch_writes", "Batch writes: rows per second against one ORM save() per row")
    assert connection.vendor == "postgresql", "run against PostgreSQL (deploy/bench.sh)"
    result_obj = simulate([120.0, -80.0, 35.5, -240.0, 60.0], SimulationConfig(paths=2_000, seed=1))
    result, summary = result_obj.to_dict(), result_obj.summary()
    strategies = {
        "orm save() per row": orm_per_row,
        "executemany (pipelined)": batched(finish_jobs_executemany, args.batch),
        "COPY + UPDATE FROM": batched(finish_jobs_copy, args.batch),
        "arrays + UPDATE FROM": batched(finish_jobs_arrays, args.batch),
    }
    sizes = [int(s) for s in args.sizes.split(",")]
    kb = len(json.dumps(result)) / 1024
    try:
        for title, payload in (
            (f"completed jobs: status + {kb:.1f} KB result + 2 outbox events", result),
            ("status updates: failed + reason + 2 outbox events", None),
        ):
            out.line(
                f"{title}; batch = {args.batch} per transaction;"
                f" best of max({args.repeat}, {args.min_rows:,} / rows) rounds, taking turns"
            )
            out.line(f"{'rows':>7} | " + " | ".join(f"{name:>24}" for name in strategies) + " | writer / orm")
            out.line("-" * 137)
            for n in sizes:
                rates = measure(
                    strategies, n, payload, summary if payload else None, rounds_for(n, args.repeat, args.min_rows)
                )
                cells = " | ".join(f"{rates[name]:>17,.0f} rows/s" for name in strategies)
                # as finish_jobs chooses for flushes of this size
                chosen = "arrays + UPDATE FROM" if min(n, args.batch) <= ARRAYS_UP_TO else "COPY + UPDATE FROM"
                out.line(f"{n:>7,} | {cells} | {rates[chosen] / rates['orm save() per row']:>8.1f}x")
            out.line()
        out.save()
    finally:
        cleanup()


if __name__ == "__main__":
    main()
