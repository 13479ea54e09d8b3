"""The jobs a worker's main process holds: published against the real Redis (a single
node and the Redis Cluster), found when the process stops writing, re-sent by the
service only while still pending."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from simulations import services, task_names
from simulations.keys_redis import keys_redis
from simulations.models import JobStatus, JobTrigger, SimulationJob
from tests import factories
from workers import held


@pytest.fixture
def backend(keys_backend):
    keys_redis().delete(held.HELD_KEY)
    yield keys_backend
    keys_redis().delete(held.HELD_KEY)


def request(name, *args, task_id="t-0"):
    return SimpleNamespace(name=name, args=args, id=task_id)


def test_the_job_ids_of_single_and_bulk_messages_and_the_task_ids_of_wake_ups_and_nothing_else():
    requests = [
        request(task_names.RUN_SIMULATION, "a"),
        request(task_names.RUN_SIMULATIONS, ["b", "c"]),
        request(task_names.SWEEP_STALE_JOBS),
        request(task_names.RUN_SIMULATION),  # no arguments: nothing to re-send
        request(task_names.RUN_PENDING_JOBS, task_id="wake-1"),  # names no job: its take's token
    ]
    assert held.job_ids_of(requests) == ["a", "b", "c"]
    assert held.takes_of(requests) == ["wake-1"]


def test_a_process_publishes_what_it_holds_and_a_silent_one_is_an_orphan(backend, monkeypatch):
    from celery.worker import state

    reserved = [
        request(task_names.RUN_SIMULATIONS, ["j1", "j2"]),
        request(task_names.RUN_SIMULATION, "j3"),
        request(task_names.RUN_PENDING_JOBS, task_id="wake-1"),
    ]
    monkeypatch.setattr(state, "reserved_requests", reserved)
    alive = held.HeldJobs("host:1", interval=0.1).start()
    silent = held.HeldJobs("host:2", interval=60)
    assert silent.publish()
    time.sleep(0.3)
    entry = json.loads(keys_redis().hget(held.HELD_KEY, "host:1"))
    assert entry["jobs"] == ["j1", "j2", "j3"] and entry["takes"] == ["wake-1"] and time.time() - entry["ts"] < 1
    assert held.orphans(older_than=10) == {}
    time.sleep(0.6)
    assert held.orphans(older_than=0.5) == {"host:2": held.Held(["j1", "j2", "j3"], ["wake-1"])}  # host:1 still writes
    held.forget(["host:2"])
    assert keys_redis().hkeys(held.HELD_KEY) == ["host:1"]
    assert alive.publish(request(task_names.RUN_SIMULATION, "j4"))  # arriving: not in Celery's registry yet
    assert json.loads(keys_redis().hget(held.HELD_KEY, "host:1"))["jobs"] == ["j1", "j2", "j3", "j4"]
    alive.stop()  # a graceful stop leaves nothing behind: the broker has the messages back
    assert keys_redis().hkeys(held.HELD_KEY) == []


def test_an_unreadable_entry_is_dropped_with_nothing_to_resend(backend):
    keys_redis().hset(held.HELD_KEY, "host:9", "not json")
    keys_redis().hset(held.HELD_KEY, "host:8", json.dumps(["a list"]))
    assert held.orphans(older_than=60) == {"host:9": held.Held(), "host:8": held.Held()}


def test_an_entry_written_before_takes_were_named_still_gives_its_jobs(backend):
    keys_redis().hset(held.HELD_KEY, "host:7", json.dumps({"ts": 0, "jobs": ["j1"]}))
    assert held.orphans(older_than=60) == {"host:7": held.Held(["j1"], [])}


@pytest.mark.django_db
def test_only_the_jobs_still_pending_are_sent_again(django_capture_on_commit_callbacks, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(services.recovery, "enqueue_job", lambda *, job_id: sent.append(str(job_id)))
    pending = services.create_job(assessment_id="H-1", trades=factories.trades(), enqueue=False)
    started = services.create_job(assessment_id="H-2", trades=factories.trades(), enqueue=False)
    services.start_job(job_id=started.id, worker_id="other:1")
    done = services.create_job(assessment_id="H-3", trades=factories.trades(), enqueue=False)
    services.run_job(job_id=done.id, worker_id="w:1")
    ids = [str(pending.id), str(started.id), str(done.id), "not-a-uuid"]
    assert services.reenqueue_held_by_dead_worker(job_ids=ids, dead_worker_id="host:1") == 1
    assert sent == [str(pending.id)]
    pending.refresh_from_db()
    assert pending.status == JobStatus.PENDING and pending.updated_at > pending.created_at


def test_the_registry_is_copied_again_when_it_changes_while_being_read(monkeypatch):
    from celery.worker import state

    class Changing(list):
        reads = 0

        def __iter__(self):
            Changing.reads += 1
            if Changing.reads < 3:
                raise RuntimeError("Set changed size during iteration")
            return super().__iter__()

    monkeypatch.setattr(state, "reserved_requests", Changing([request(task_names.RUN_SIMULATION, "j9")]))
    assert held._reserved_requests()[0].args == ("j9",) and Changing.reads == 3


@pytest.mark.django_db
def test_only_the_pending_api_jobs_of_the_dead_takes_are_freed_and_a_worker_woken(monkeypatch):
    woken: list[bool] = []
    monkeypatch.setattr(services.recovery, "wake_workers", lambda: woken.append(True) or True)

    def job(name: str, reserved_by: str, **change):
        made = services.create_job(assessment_id=name, trades=factories.trades(), enqueue=False)
        SimulationJob.objects.filter(pk=made.pk).update(reserved_by=reserved_by, **change)
        return made.pk

    dead = [job("R-1", "wake-dead"), job("R-2", "wake-dead")]
    running = job("R-3", "wake-dead", status=JobStatus.RUNNING, worker_id="host:1", attempts=1)
    other_take = job("R-4", "wake-alive")
    kafka = job("R-5", "wake-dead", trigger=JobTrigger.KAFKA)  # never pulled: nothing to free
    assert services.release_takes_of_dead_worker(tokens=[], dead_worker_id="host:1") == 0 and not woken
    assert services.release_takes_of_dead_worker(tokens=["wake-dead", "wake-gone"], dead_worker_id="host:1") == 2
    assert woken == [True]
    rows = SimulationJob.objects.in_bulk([*dead, running, other_take, kafka])
    assert [rows[pk].reserved_by for pk in dead] == ["", ""]
    assert rows[running].reserved_by == "wake-dead" and rows[running].status == JobStatus.RUNNING  # its heartbeat's
    assert rows[other_take].reserved_by == "wake-alive" and rows[kafka].reserved_by == "wake-dead"
    assert services.release_takes_of_dead_worker(tokens=["wake-dead"], dead_worker_id="host:1") == 0
    assert woken == [True]  # nothing freed: no wake-up
