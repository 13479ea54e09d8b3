"""The batch writer on the real PostgreSQL: same rows as per-row writes, one
transaction per flush, nothing half-written when a flush fails."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from benchmarks.strategies import finish_jobs_executemany
from simulations import events, services
from simulations.engine import SimulationConfig, simulate
from simulations.models import EventOutbox, JobStatus, SimulationJob
from simulations.services.batch import (
    JobChange,
    _finish_one_by_one,
    finish_jobs,
    finish_jobs_arrays,
    finish_jobs_copy,
)
from tests import factories
from tests.triggers import refusing
from workers.batching import BatchWriteFailed, BatchWriter

pytestmark = pytest.mark.django_db(transaction=True)


RESULTS: dict = {}  # one simulation per index, so both sides store the same result


def make_jobs(n, prefix="B"):
    return [
        services.create_job(
            assessment_id=f"{prefix}-{i}", trades=factories.trades(), config=factories.config(), enqueue=False
        )
        for i in range(n)
    ]


def change_for(job, i, *, from_pending=True, attempt=0, worker="w:1"):
    if i % 5 == 4:
        return JobChange(
            job_id=job.id,
            status=JobStatus.FAILED,
            worker_id=worker,
            started_at=timezone.now(),
            error=f"bad input {i}",
            from_pending=from_pending,
            attempt=attempt,
        )
    result = RESULTS.setdefault(i, simulate([1.0, -1.0, 2.0 + i], SimulationConfig(paths=50, seed=i)))
    return JobChange(
        job_id=job.id,
        status=JobStatus.COMPLETED,
        worker_id=worker,
        started_at=timezone.now(),
        result=result.to_dict(),
        summary=result.summary(),
        from_pending=from_pending,
        attempt=attempt,
    )


def snapshot(jobs):
    rows = []
    for job in jobs:
        j = SimulationJob.objects.get(pk=job.id)
        events = [
            (
                e.topic,
                e.key[2:],
                {k: v for k, v in e.payload.items() if k not in ("timestamp", "jobId", "assessmentId")},
            )
            for e in EventOutbox.objects.filter(job=j).order_by("id")
        ]
        rows.append(
            (
                j.assessment_id[2:],
                j.status,
                j.result,
                j.summary,
                j.error,
                j.attempts,
                j.paths_done,
                j.started_at is not None,
                j.completed_at is not None,
                events,
            )
        )
    return rows


@pytest.mark.parametrize("flush", [finish_jobs_arrays, finish_jobs_copy])
def test_the_sql_payloads_are_the_python_builders_payloads(flush):
    """One definition of each event: the flush's statement builds the payloads in SQL;
    for every event kind it writes (started, completed with a result, failed) they are
    exactly what ``events.started_payload`` / ``completed_payload`` build."""
    jobs = make_jobs(5, "P")
    changes = [change_for(job, i) for i, job in enumerate(jobs)]  # i == 4 fails
    by_id = {c.job_id: c for c in changes}
    assert flush([c.encode() for c in changes]) == set(by_id)
    kinds = set()
    for row in EventOutbox.objects.filter(job__in=jobs).order_by("id"):
        job = SimulationJob.objects.get(pk=row.job_id)
        if row.topic == events.SIMULATION_STARTED:
            expected = events.started_payload(job)
        else:
            expected = events.completed_payload(job, by_id[job.id].summary)
        assert row.key == events.event_key(job)
        assert row.payload.keys() == expected.keys()
        assert {k: v for k, v in row.payload.items() if k != "timestamp"} == {
            k: v for k, v in expected.items() if k != "timestamp"
        }
        assert dt.datetime.fromisoformat(row.payload["timestamp"]).tzinfo is not None
        kinds.add((row.topic, job.status))
    assert kinds == {
        (events.SIMULATION_STARTED, JobStatus.COMPLETED),
        (events.SIMULATION_STARTED, JobStatus.FAILED),
        (events.SIMULATION_COMPLETED, JobStatus.COMPLETED),
        (events.SIMULATION_COMPLETED, JobStatus.FAILED),
    }


@pytest.mark.parametrize("flush", [finish_jobs_arrays, finish_jobs_copy, finish_jobs_executemany, _finish_one_by_one])
def test_batched_writes_equal_per_row_writes(flush):
    per_row, batched = make_jobs(20, "R"), make_jobs(20, "B")
    for i, job in enumerate(per_row):  # the per-row way: claim, then one transaction per finish
        claimed = services.start_job(job_id=job.id, worker_id="w:1")
        change = change_for(job, i)
        if change.status == JobStatus.COMPLETED:
            services.jobs._finish(
                job.id,
                JobStatus.COMPLETED,
                claim=("w:1", claimed.attempts),
                result=change.result,
                summary=change.summary,
            )
        else:
            services.fail_job(job_id=job.id, error=change.error, claim=("w:1", claimed.attempts))
    written = flush([change_for(job, i) for i, job in enumerate(batched)])
    assert written == {j.id for j in batched}
    assert snapshot(batched) == snapshot(per_row)
    summaries = [SimulationJob.objects.get(pk=j.id).summary for j in batched]
    assert [s is not None for s in summaries] == [i % 5 != 4 for i in range(20)]  # completed ones carry it
    assert summaries[0]["probabilityOfPass"] == RESULTS[0].summary()["probabilityOfPass"]


@pytest.mark.parametrize("flush", [finish_jobs_arrays, finish_jobs_copy, finish_jobs_executemany])
def test_a_flush_counts_the_jobs_it_finished_by_status(flush):
    """By status, and only what was written (a job the flush did not find is not counted)."""

    def finished(status):
        return REGISTRY.get_sample_value("montecarlo_jobs_finished_total", {"status": status}) or 0.0

    jobs = make_jobs(10, "M")
    before = {status: finished(status) for status in ("completed", "failed")}
    ghost = JobChange(job_id=uuid.uuid4(), status="completed", worker_id="w", started_at=timezone.now(), result={})
    flush([change_for(job, i) for i, job in enumerate(jobs)] + [ghost])  # i % 5 == 4 fail: 2 of 10
    assert finished("completed") - before["completed"] == 8
    assert finished("failed") - before["failed"] == 2


def test_a_flush_takes_arrays_up_to_the_limit_and_copy_above(monkeypatch):
    """Both strategies write the same rows (above); which one a flush takes is its size."""
    from simulations.services import batch

    used = []
    for name in ("finish_jobs_arrays", "finish_jobs_copy"):
        real = getattr(batch, name)
        monkeypatch.setattr(batch, name, lambda changes, real=real, name=name: used.append(name) or real(changes))
    monkeypatch.setattr(batch, "ARRAYS_UP_TO", 3)
    small, large = make_jobs(3, "S"), make_jobs(4, "L")
    assert finish_jobs([change_for(j, i) for i, j in enumerate(small)]) == {j.id for j in small}
    assert finish_jobs([change_for(j, i) for i, j in enumerate(large)]) == {j.id for j in large}
    assert used == ["finish_jobs_arrays", "finish_jobs_copy"]
    assert EventOutbox.objects.filter(topic="montecarlo.simulation-completed").count() == 7


def test_claimed_jobs_are_written_only_under_their_claim():
    jobs = make_jobs(3)
    for job in jobs:
        services.start_job(job_id=job.id, worker_id="w:1")
    changes = [
        change_for(jobs[0], 0, from_pending=False, attempt=1),
        change_for(jobs[1], 1, from_pending=False, attempt=1, worker="w:other"),
        change_for(jobs[2], 2, from_pending=True),
    ]
    assert finish_jobs(changes) == {jobs[0].id}
    assert [SimulationJob.objects.get(pk=j.id).status for j in jobs] == ["completed", "running", "running"]
    assert EventOutbox.objects.filter(topic="montecarlo.simulation-started").count() == 3  # from the claims only


def test_a_batch_flushes_when_full_and_a_lone_change_after_the_wait():
    sizes = []

    def flush(changes):
        sizes.append(len(changes))
        return finish_jobs(changes)

    jobs = make_jobs(10)
    writer = BatchWriter(max_items=5, max_wait_ms=10_000, flush=flush)
    started = time.monotonic()
    results = []
    threads = [
        threading.Thread(target=lambda j=j, i=i: results.append(writer.write(change_for(j, i))))
        for i, j in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sizes == [5, 5] and all(results)
    assert time.monotonic() - started < 5  # full batches did not wait for the timer
    writer.stop()

    lone = make_jobs(1, "L")[0]
    quick = BatchWriter(max_items=100, max_wait_ms=50, flush=flush)
    assert quick.write(change_for(lone, 0)) is True
    assert sizes[-1] == 1
    quick.stop()


def test_a_batch_goes_once_every_running_task_waits_for_it():
    """A prefork child runs one task: its changes go at once, not after the window. With
    three tasks running, the first two changes wait for the third, then go together."""
    sizes = []

    def flush(changes):
        sizes.append(len(changes))
        return finish_jobs(changes)

    jobs = make_jobs(4)
    alone = BatchWriter(max_items=100, max_wait_ms=60_000, flush=flush, tasks_running=lambda: 1)
    started = time.monotonic()
    assert alone.write(change_for(jobs[0], 0)) is True
    assert time.monotonic() - started < 30 and sizes == [1]  # the 60 s window was not waited out
    alone.stop()

    three = BatchWriter(max_items=100, max_wait_ms=60_000, flush=flush, tasks_running=lambda: 3)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda j=j, i=i: results.append(three.write(change_for(j, i))))
        for i, j in enumerate(jobs[1:], start=1)
    ]
    for t in threads[:2]:
        t.start()
    time.sleep(0.5)
    assert sizes == [1] and results == []  # two of the three running tasks wait
    threads[2].start()
    for t in threads:
        t.join(30)
    assert sizes == [1, 3] and results == [True, True, True]
    three.stop()


def test_a_bulk_task_is_one_caller_however_many_changes_it_hands_over():
    jobs = make_jobs(5)
    writer = BatchWriter(max_items=100, max_wait_ms=60_000, tasks_running=lambda: 1)
    started = time.monotonic()
    written = writer.write_many([change_for(j, i) for i, j in enumerate(jobs)])
    assert written == {j.id for j in jobs} and time.monotonic() - started < 30
    writer.stop()


def test_a_failed_flush_writes_nothing_and_tells_every_waiting_task():
    jobs = make_jobs(6)
    poison = jobs[3]
    # the flush's UPDATE fails at one of its six jobs: mid-statement
    with refusing(
        "simulations_simulationjob", "UPDATE", "NEW.assessment_id = %s", "injected failure", poison.assessment_id
    ):
        writer = BatchWriter(max_items=6, max_wait_ms=5_000)
        errors = []

        def submit(job, i):
            try:
                writer.write(change_for(job, i))
            except BatchWriteFailed as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=submit, args=(j, i)) for i, j in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.stop()
        assert len(errors) == 6 and all("injected failure" in e for e in errors)
        assert {SimulationJob.objects.get(pk=j.id).status for j in jobs} == {"pending"}
        assert not EventOutbox.objects.filter(job__in=jobs).exists()


@pytest.mark.parametrize("flush", [finish_jobs_arrays, finish_jobs_copy])
def test_an_event_refused_after_the_jobs_were_updated_undoes_the_updates(flush):
    # The arrays flush runs in autocommit (one statement, one transaction): the UPDATE
    # of its CTE must still vanish when the outbox INSERT after it fails.
    jobs = make_jobs(5)
    poison = jobs[2]
    with refusing(
        "simulations_eventoutbox",
        "INSERT",
        "NEW.key = %s AND NEW.topic LIKE '%%completed'",
        "event refused",
        poison.assessment_id,
    ):
        with pytest.raises(Exception, match="event refused"):
            flush([change_for(j, i) for i, j in enumerate(jobs)])
        assert {SimulationJob.objects.get(pk=j.id).status for j in jobs} == {"pending"}
        assert not EventOutbox.objects.filter(job__in=jobs).exists()
        assert connection.get_autocommit() and not connection.in_atomic_block  # nothing left open
    assert len(flush([change_for(j, i) for i, j in enumerate(jobs)])) == 5  # the same connection goes on


def test_stop_flushes_what_is_waiting():
    job = make_jobs(1)[0]
    writer = BatchWriter(max_items=100, max_wait_ms=60_000)
    outcome = []
    t = threading.Thread(target=lambda: outcome.append(writer.write(change_for(job, 0))))
    t.start()
    time.sleep(0.2)
    writer.stop()
    t.join(5)
    assert outcome == [True]
    assert SimulationJob.objects.get(pk=job.id).status == "completed"


def test_unknown_jobs_are_simply_not_written():
    ghost = JobChange(job_id=uuid.uuid4(), status="completed", worker_id="w", started_at=timezone.now(), result={})
    assert finish_jobs([ghost]) == set()


def test_an_unstorable_change_fails_its_job_with_the_reason_and_the_rest_of_the_batch_is_written():
    jobs = make_jobs(4)
    changes = [change_for(j, i) for i, j in enumerate(jobs[:3])]
    bad = change_for(jobs[3], 0)
    # Results are stored compressed and payloads as json text (any JSON goes); a text
    # column is what PostgreSQL refuses a NUL character in (a reason quoting raw bytes).
    bad.status, bad.result, bad.summary, bad.error = JobStatus.FAILED, None, None, "upstream said \x00"
    writer = BatchWriter(max_items=4, max_wait_ms=5_000)
    outcomes = {}
    threads = [
        threading.Thread(target=lambda c=c: outcomes.setdefault(c.job_id, writer.write(c))) for c in changes + [bad]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert all(outcomes.values()) and len(outcomes) == 4
    statuses = {j.id: SimulationJob.objects.get(pk=j.id) for j in jobs}
    assert [statuses[j.id].status for j in jobs[:3]] == ["completed", "completed", "completed"]
    failed = statuses[jobs[3].id]
    assert failed.status == "failed" and "could not be stored" in failed.error
    assert EventOutbox.objects.filter(job=failed, topic="montecarlo.simulation-completed").count() == 1


def _sequential_scans_of_jobs() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # our own counters, published now
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'simulations_simulationjob'")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("flush", [finish_jobs_arrays, finish_jobs_copy])
@pytest.mark.parametrize("others,batch", [(20_000, 1), (20_000, 64)])
def test_a_flush_looks_jobs_up_by_key_instead_of_scanning_the_table(others, batch, flush):
    """A planner that takes a batch for thousands of changes scans every job for every
    flush, a cost that grows with the table: it did with an unanalysed temp table."""
    SimulationJob.objects.bulk_create([SimulationJob(assessment_id=f"BIG-{i}") for i in range(others)])
    jobs = SimulationJob.objects.bulk_create([SimulationJob(assessment_id=f"SC-{i}") for i in range(batch)])
    changes = [change_for(j, i % 4) for i, j in enumerate(jobs)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE simulations_simulationjob")  # as autovacuum would have
    for size in (1, 64, 1, 64, 1, 64):  # psycopg prepares a statement run 5 times: its later plans count
        assert flush([change_for(SimulationJob(id=uuid.uuid4()), i) for i in range(size)]) == set()
    before = _sequential_scans_of_jobs()
    SimulationJob.objects.filter(error__contains="no such error").count()  # the measure can see a scan
    scanned = _sequential_scans_of_jobs()
    assert scanned > before
    assert len(flush(changes)) == batch
    assert _sequential_scans_of_jobs() == scanned
