"""The API's jobs pulled by woken workers (simulations.services.dispatch, the default):
the web sends one wake-up while none waits, a take never shares a job with another,
a dead take is taken again, and the sweep wakes the workers for jobs left waiting.
Real PostgreSQL, the real Redis broker and keys Redis."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from simulations import metrics, services
from simulations.keys_redis import keys_redis
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services.dispatch import WAKE_KEY, WAKE_TTL, woken
from tests import factories
from tests.broker import queued_messages, queued_wake_ups
from tests.simulations.test_dispatch import _kill_web, _point_broker, _post, _post_over_http

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit wakes for real


def _job(assessment: str, trigger: str = JobTrigger.API) -> SimulationJob:
    return services.create_job(assessment_id=assessment, trades=factories.trades(), trigger=trigger, enqueue=False)


def _age(job_ids, seconds: float) -> None:
    SimulationJob.objects.filter(pk__in=job_ids).update(updated_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_posts_send_one_wake_up_while_one_waits_and_no_job_ids(settings):
    settings.SIMULATION_DISPATCH_WINDOW_MS = 0  # sent at once: the window has its own tests
    api, messages, wake_ups = factories.api_client(), len(queued_messages()), queued_wake_ups()
    ids = [_post(api, f"PULL-{i}") for i in range(6)]
    assert queued_wake_ups() - wake_ups == 1
    assert len(queued_messages()) == messages  # no message carries a job of the API
    assert 0 < keys_redis().ttl(WAKE_KEY) <= WAKE_TTL
    woken()  # a worker starts the wake-up: the next commit sends another
    ids.append(_post(api, "PULL-AFTER"))
    assert queued_wake_ups() - wake_ups == 2
    assert set(SimulationJob.objects.filter(pk__in=ids).values_list("status", flat=True)) == {JobStatus.PENDING}


def _wait_for_wake_ups(than: int, timeout: float = 5.0) -> int:
    """Wake-ups queued, once there are more than ``than`` (no flush: read only)."""
    deadline = time.monotonic() + timeout
    while queued_wake_ups() <= than and time.monotonic() < deadline:
        time.sleep(0.02)
    return queued_wake_ups()


def test_posts_within_the_window_share_one_wake_up_sent_when_it_ends_without_a_flush(settings):
    settings.SIMULATION_DISPATCH_WINDOW_MS = 1_500
    api, wake_ups = factories.api_client(), queued_wake_ups()
    started = time.monotonic()
    ids = [_post(api, f"PULL-WIN-{i}") for i in range(4)]
    if time.monotonic() - started < 1.0:  # else the window may have passed meanwhile
        assert queued_wake_ups() == wake_ups, "woken before the window passed"
    assert _wait_for_wake_ups(wake_ups) - wake_ups == 1
    time.sleep(0.2)
    assert queued_wake_ups() - wake_ups == 1  # one for all four
    assert sorted(map(str, services.reserve_pending_jobs(token="win-take", limit=10))) == sorted(ids)


def test_a_request_bringing_a_takes_worth_wakes_at_once_and_a_window_of_0_at_once(settings):
    settings.SIMULATION_DISPATCH_WINDOW_MS = 60_000
    settings.SIMULATION_TASK_BATCH = 3
    api, wake_ups = factories.api_client(), queued_wake_ups()
    jobs = [{"assessmentId": f"PULL-FULL-{i}", "trades": factories.trades()} for i in range(3)]
    assert api.post("/simulations/batch", {"jobs": jobs}, format="json").status_code == 202
    assert queued_wake_ups() - wake_ups == 1  # a full take waits: no window
    woken()
    settings.SIMULATION_DISPATCH_WINDOW_MS = 0
    _post(api, "PULL-NOW")
    assert queued_wake_ups() - wake_ups == 2


def test_a_web_process_that_stops_sends_the_wake_up_its_window_holds(make_web):
    base, _, _ = make_web(SIMULATION_DISPATCH_WINDOW_MS="60000")
    wake_ups = queued_wake_ups()
    ids = [_post_over_http(base, f"PULL-STOP-{i}") for i in range(3)]
    assert queued_wake_ups() == wake_ups  # a minute's window: still held
    master = make_web.processes[-1]
    master.send_signal(signal.SIGTERM)  # graceful: gunicorn's worker_exit hook flushes
    assert master.wait(30) == 0
    assert queued_wake_ups() - wake_ups == 1
    assert sorted(map(str, services.reserve_pending_jobs(token="stop-take", limit=10))) == sorted(ids)


def test_a_web_process_killed_inside_the_window_leaves_its_jobs_to_the_sweep(make_web):
    base, _, _ = make_web(SIMULATION_DISPATCH_WINDOW_MS="60000")
    wake_ups = queued_wake_ups()
    job_id = _post_over_http(base, "PULL-KILL-1")
    _kill_web(make_web.processes[-1])
    assert queued_wake_ups() == wake_ups  # the window died with the process
    assert 0 < keys_redis().ttl(WAKE_KEY) <= WAKE_TTL  # its claim expires: the next commit wakes
    assert services.wake_for_waiting_api_jobs() is False  # not waiting longer than a wake-up's TTL yet
    keys_redis().delete(WAKE_KEY)  # as its TTL would have...
    _age([job_id], WAKE_TTL + 1)  # ...when the job has waited that long
    assert services.wake_for_waiting_api_jobs() is True
    assert queued_wake_ups() - wake_ups == 1


def test_a_take_gets_the_oldest_free_api_jobs_and_marks_them():
    jobs = [_job(f"PULL-T{i}") for i in range(5)]
    _job("PULL-KAFKA", trigger=JobTrigger.KAFKA)  # pushed in its own message: never taken
    taken = services.reserve_pending_jobs(token="wake-1", limit=3)
    assert taken == [j.id for j in jobs[:3]]
    assert services.reserve_pending_jobs(token="wake-2", limit=10) == [j.id for j in jobs[3:]]
    assert services.reserve_pending_jobs(token="wake-3", limit=10) == []
    assert dict(SimulationJob.objects.filter(pk__in=taken).values_list("id", "reserved_by")) == {
        i: "wake-1" for i in taken
    }


def test_a_take_skips_rows_another_take_holds_locked_instead_of_waiting():
    jobs = [_job(f"PULL-L{i}") for i in range(3)]
    locked, release = threading.Event(), threading.Event()

    def hold_the_oldest():
        try:
            with transaction.atomic():
                list(SimulationJob.objects.select_for_update().filter(pk=jobs[0].id))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_oldest)
    holder.start()
    try:
        assert locked.wait(10)
        assert services.reserve_pending_jobs(token="wake-skip", limit=10) == [jobs[1].id, jobs[2].id]
    finally:
        release.set()
        holder.join(10)
    assert services.reserve_pending_jobs(token="wake-next", limit=10) == [jobs[0].id]


def test_concurrent_takes_share_no_job_and_miss_none():
    ids = {_job(f"PULL-C{i}").id for i in range(60)}
    taken: dict[str, list] = {}

    def take(token: str):
        try:
            got: list = []
            while batch := services.reserve_pending_jobs(token=token, limit=4):
                got += batch
                SimulationJob.objects.filter(pk__in=batch).update(status=JobStatus.COMPLETED)  # as a run would
            taken[token] = got
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(f"wake-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [i for got in taken.values() for i in got]
    assert len(every) == len(set(every)) and set(every) == ids


def test_a_redelivered_wake_up_takes_its_jobs_again_and_a_dead_take_frees_after_the_lease(settings):
    jobs = [_job(f"PULL-R{i}") for i in range(2)]
    ids = [j.id for j in jobs]
    assert services.reserve_pending_jobs(token="wake-dead", limit=10) == ids
    assert services.reserve_pending_jobs(token="wake-other", limit=10) == []  # held by the take
    assert services.reserve_pending_jobs(token="wake-dead", limit=10) == ids  # its message again
    _age(ids, settings.SIMULATION_RESERVATION_LEASE + 1)
    assert services.reserve_pending_jobs(token="wake-other", limit=10) == ids


def test_a_redelivered_wake_up_takes_back_its_job_whose_child_was_killed(settings):
    """A large job is claimed (running) by the take's worker; its child dies (OOM): the
    redelivered wake-up gets it again, its claim sees the holder dead and runs it anew."""
    job = _job("PULL-OOM")
    assert services.reserve_pending_jobs(token="wake-oom", limit=10) == [job.id]
    SimulationJob.objects.filter(pk=job.id).update(status=JobStatus.RUNNING, worker_id="gone:1", attempts=1)
    assert services.reserve_pending_jobs(token="wake-other", limit=10) == []
    _age([job.id], settings.SIMULATION_RESERVATION_LEASE + 1)
    assert services.reserve_pending_jobs(token="wake-other", limit=10) == []  # running: the lease is for pending
    assert services.reserve_pending_jobs(token="wake-oom", limit=10) == [job.id]
    claimed = services.claim_job(job_id=job.id, worker_id="test:2", is_alive=lambda _: False, max_attempts=3)
    assert claimed is not None and claimed.attempts == 2 and claimed.worker_id == "test:2"


def test_a_wake_up_runs_its_take_and_a_full_take_wakes_another(settings, core_service):
    jobs = [_job(f"PULL-RUN{i}") for i in range(3)]
    keys_redis().set(WAKE_KEY, "1", ex=WAKE_TTL)  # the one in flight, as the web set it
    woken_again: list[int] = []
    write = services.finish_jobs
    written = services.run_pending_jobs(
        token="wake-run", worker_id="test:1", write=write, limit=2, wake=lambda: woken_again.append(1)
    )
    assert written == 2 and woken_again == [1]  # full: there may be more
    assert keys_redis().exists(WAKE_KEY) == 0  # what commits next sends a wake-up
    again = services.run_pending_jobs(
        token="wake-run2", worker_id="test:1", write=write, limit=2, wake=lambda: woken_again.append(1)
    )
    assert again == 1
    assert woken_again == [1]
    assert set(SimulationJob.objects.filter(pk__in=[j.id for j in jobs]).values_list("status", flat=True)) == {
        JobStatus.COMPLETED
    }


def test_a_refused_wake_up_forgets_its_key_so_the_next_commit_tries_again():
    refused, wake_ups = metrics.ENQUEUE_FAILURES._value.get(), queued_wake_ups()
    _point_broker("redis://127.0.0.1:1/0")  # nothing listens there: a real refused connection
    try:
        assert services.wake_workers() is False
    finally:
        _point_broker(None)
    assert metrics.ENQUEUE_FAILURES._value.get() - refused == 1
    assert keys_redis().exists(WAKE_KEY) == 0
    assert services.wake_workers() is True
    assert queued_wake_ups() - wake_ups == 1


def test_the_sweep_wakes_the_workers_only_for_api_jobs_left_waiting():
    wake_ups = queued_wake_ups()
    assert services.wake_for_waiting_api_jobs() is False  # nothing waits
    fresh = _job("PULL-FRESH")
    assert services.wake_for_waiting_api_jobs() is False  # its own wake-up is on its way
    kafka = _job("PULL-SWEEP-K", trigger=JobTrigger.KAFKA)
    _age([kafka.id], WAKE_TTL + 1)
    assert services.wake_for_waiting_api_jobs() is False  # pushed jobs have the pending re-send
    _age([fresh.id], WAKE_TTL + 1)  # its wake-up was lost
    assert services.wake_for_waiting_api_jobs() is True
    assert queued_wake_ups() - wake_ups == 1


def test_with_pull_off_the_api_pushes_job_ids_and_the_sweep_sends_no_wake_up(settings):
    settings.SIMULATION_API_PULL = False
    settings.SIMULATION_DISPATCH_WINDOW_MS = 0
    api, messages, wake_ups = factories.api_client(), len(queued_messages()), queued_wake_ups()
    job_id = _post(api, "PULL-OFF")
    assert queued_messages()[messages:] == [[job_id]] and queued_wake_ups() == wake_ups
    _age([job_id], WAKE_TTL + 1)  # waiting in its message: the sweep wakes nobody for it
    assert services.wake_for_waiting_api_jobs() is False and queued_wake_ups() == wake_ups
