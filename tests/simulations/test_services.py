"""Services on the real PostgreSQL: transitions, claims, failures, outbox."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from simulations import services
from simulations.engine import SimulationConfig, simulate
from simulations.errors import InvalidInput, InvalidTransition, JobNotFound
from simulations.models import EventOutbox, JobStatus, SimulationJob
from simulations.services import access, execution
from simulations.services.access import system_client
from tests import factories

pytestmark = pytest.mark.django_db


def new_job(**kw):
    kw.setdefault("assessment_id", "A-1")
    kw.setdefault("trades", factories.trades())
    kw.setdefault("config", factories.config())
    return services.create_job(enqueue=False, **kw)


def test_claim_happens_once():
    job = new_job()
    first = services.start_job(job_id=job.id, worker_id="w:1")
    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert first.started_at is not None and first.worker_id == "w:1"
    assert services.start_job(job_id=job.id, worker_id="w:2") is None
    assert SimulationJob.objects.get(pk=job.id).worker_id == "w:1"
    assert EventOutbox.objects.filter(job=job, topic="montecarlo.simulation-started").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_one_winner():
    job = new_job()
    barrier = threading.Barrier(4)
    winners = []

    def claim(i):
        barrier.wait()
        try:
            if services.start_job(job_id=job.id, worker_id=f"w:{i}") is not None:
                winners.append(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert SimulationJob.objects.get(pk=job.id).attempts == 1


def test_transitions_that_are_not_allowed_raise_and_change_nothing():
    job = new_job()
    some_result = simulate([1.0, -1.0], SimulationConfig(paths=10, seed=1))
    with pytest.raises(InvalidTransition):
        services.complete_job(job_id=job.id, result=some_result)  # pending cannot complete
    assert SimulationJob.objects.get(pk=job.id).status == JobStatus.PENDING
    done = services.run_job(job_id=job.id, worker_id="w:1")
    assert done.status == JobStatus.COMPLETED
    before = SimulationJob.objects.get(pk=job.id)
    with pytest.raises(InvalidTransition):
        services.fail_job(job_id=job.id, error="late failure")
    after = SimulationJob.objects.get(pk=job.id)
    assert (after.status, after.error, after.result) == (before.status, before.error, before.result)
    assert services.start_job(job_id=job.id, worker_id="w:2") is None
    with pytest.raises(JobNotFound):
        services.fail_job(job_id="00000000-0000-0000-0000-000000000000", error="x")


def test_run_job_stores_a_reproducible_result():
    a = services.run_job(job_id=new_job().id, worker_id="w:1")
    b = services.run_job(job_id=new_job(assessment_id="A-2").id, worker_id="w:1")
    assert a.status == b.status == JobStatus.COMPLETED
    assert a.result["final_pnl"] == b.result["final_pnl"]  # same trades, same seed
    assert a.result["paths"] == 2000 and a.paths_done == a.paths_total == 2000
    assert a.completed_at >= a.started_at


def test_a_config_that_became_invalid_fails_the_job_with_the_reason():
    job = new_job()
    SimulationJob.objects.filter(pk=job.id).update(input_data={"config": {"paths": -3}, "trades": [1.0, 2.0]})
    done = services.run_job(job_id=job.id, worker_id="w:1")
    assert done.status == JobStatus.FAILED and "paths" in done.error
    assert EventOutbox.objects.get(job=job, topic="montecarlo.simulation-completed").payload["status"] == "failed"


def test_an_unexpected_error_fails_the_job_and_is_raised(monkeypatch):
    job = new_job()

    def explode(*a, **k):
        raise ZeroDivisionError("kernel bug")

    monkeypatch.setattr(execution, "simulate", explode)
    with pytest.raises(ZeroDivisionError):
        services.run_job(job_id=job.id, worker_id="w:1")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "ZeroDivisionError" in job.error


def test_trades_come_from_the_core_service_when_not_inline(core_service):
    core_service.account_trades["FA-1"] = factories.trades(80, dated=True)
    job = services.create_job(funded_account_id="FA-1", config=factories.config(), enqueue=False)
    done = services.run_job(job_id=job.id, worker_id="w:1")
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.result["unit"] == "day"  # the Core Service's trades carry dates
    assert core_service.requests == ["/api/funded-accounts/FA-1/trades"]


@pytest.mark.parametrize(
    "fault,reason",
    [
        ([503, 503, 503, 503, 503], "HTTP 503"),
        (["garbage"], "not JSON"),
        (None, "has no"),
    ],
)
def test_core_service_trouble_fails_the_job_clearly(core_service, fault, reason):
    core_service.assessment_trades["A-9"] = factories.trades()
    path = "/api/assessments/A-9/trades"
    if fault is None:
        del core_service.assessment_trades["A-9"]
    else:
        core_service.faults[path] = list(fault)
    job = services.create_job(assessment_id="A-9", enqueue=False)
    done = services.run_job(job_id=job.id, worker_id="w:1")
    assert done.status == JobStatus.FAILED
    assert reason in done.error and "Core Service" in done.error


def test_core_service_down_fails_the_job_clearly(settings):
    settings.CORE_SERVICE_URL = "http://127.0.0.1:1"
    settings.CORE_SERVICE_RETRIES = 1
    settings.CORE_SERVICE_BACKOFF = 0.01
    job = services.create_job(assessment_id="A-10", enqueue=False)
    done = services.run_job(job_id=job.id, worker_id="w:1")
    assert done.status == JobStatus.FAILED and "unreachable" in done.error


def test_invalid_input_lists_every_field():
    with pytest.raises(InvalidInput) as info:
        services.create_job(config={"paths": 0, "method": "x"}, trades=[], enqueue=False)
    assert {"assessmentId", "config.paths", "config.method", "trades"} <= set(info.value.errors)


def test_a_batch_task_runs_its_small_jobs_and_writes_them_together():
    jobs = [new_job(assessment_id=f"RS-{i}") for i in range(4)]
    bad = new_job(assessment_id="RS-bad", trades=None)  # the Core Service is not reachable here
    flushes = []

    def write(changes):
        flushes.append(len(changes))
        return services.finish_jobs(changes)

    ids = [j.id for j in jobs] + [bad.id, jobs[0].id]  # a duplicate id in the same message
    assert services.run_small_jobs(job_ids=ids, worker_id="w:batch", write=write) == 5
    assert flushes == [5]  # one write for the whole batch
    rows = SimulationJob.objects.in_bulk(ids)
    assert {rows[j.id].status for j in jobs} == {JobStatus.COMPLETED}
    assert all(rows[j.id].result["paths"] == factories.config()["paths"] for j in jobs)
    assert rows[bad.id].status == JobStatus.FAILED and "Core Service" in rows[bad.id].error
    # delivered again: nothing left to do, nothing written twice
    assert services.run_small_jobs(job_ids=ids, worker_id="w:batch", write=write) == 0
    assert EventOutbox.objects.filter(job_id__in=ids, topic="montecarlo.simulation-completed").count() == 5


def test_a_batch_whose_write_fails_leaves_every_job_pending():
    jobs = [new_job(assessment_id=f"RF-{i}") for i in range(3)]

    def write(changes):
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        services.run_small_jobs(job_ids=[j.id for j in jobs], worker_id="w:batch", write=write)
    assert set(SimulationJob.objects.filter(pk__in=[j.id for j in jobs]).values_list("status", flat=True)) == {
        "pending"
    }


@pytest.mark.parametrize(
    "queryset, index",
    [
        (lambda: SimulationJob.objects.filter(assessment_id="A-1", status=JobStatus.PENDING), "job_assessment_status"),
        (lambda: SimulationJob.objects.filter(funded_account_id__in=["F-1", "F-2"]), "job_account_status"),
        (
            lambda: SimulationJob.objects.filter(client=system_client(), idempotency_key="key-1"),
            "job_client_idempotency_key_unique",
        ),
        (
            lambda: SimulationJob.objects.filter(client=system_client(), idempotency_key__in=["key-1", "key-2"]),
            "job_client_idempotency_key_unique",
        ),
    ],
)
def test_lookups_by_value_can_use_the_partial_indexes(queryset, index):
    # The indexes leave NULLs out; a lookup by a value must still be provably covered.
    # With sequential scans priced out, a plan without the index would be a (disabled)
    # scan or a walk of a whole other index: on 2,000 analysed rows, both cost far more.
    system = system_client()
    SimulationJob.objects.bulk_create(
        SimulationJob(
            client=system,
            assessment_id=f"A-{i}" if i % 2 else None,
            funded_account_id=None if i % 2 else f"F-{i}",
            idempotency_key=f"key-{i}" if i % 3 == 0 else None,
        )
        for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE simulations_simulationjob")
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert index in queryset().order_by().explain()


def test_the_idempotency_key_stays_unique_per_client_and_keyless_jobs_do_not_collide():
    # Straight to the table: the services would hand back the existing job instead.
    system, other = system_client(), access.create_client(name="other", scopes=["submit"])
    for key in (None, None, "same"):
        SimulationJob.objects.create(client=system, assessment_id="A-1", idempotency_key=key)
    with pytest.raises(IntegrityError), transaction.atomic():
        SimulationJob.objects.create(client=system, assessment_id="A-2", idempotency_key="same")
    SimulationJob.objects.create(client=other, assessment_id="A-3", idempotency_key="same")  # its own key
    assert SimulationJob.objects.filter(idempotency_key__isnull=True).count() == 2
