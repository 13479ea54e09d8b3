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
from simulations.models import JobStatus
from tests import factories
from workers import held


@pytest.fixture
def backend(keys_backend):
    keys_redis().delete(held.HELD_KEY)
    yield keys_backend
    keys_redis().delete(held.HELD_KEY)


def request(name, *args):
    return SimpleNamespace(name=name, args=args)


def test_the_job_ids_of_single_and_bulk_messages_and_nothing_else():
    requests = [
        request(task_names.RUN_SIMULATION, "a"),
        request(task_names.RUN_SIMULATIONS, ["b", "c"]),
        request(task_names.SWEEP_STALE_JOBS),
        request(task_names.RUN_SIMULATION),  # no arguments: nothing to re-send
    ]
    assert held.job_ids_of(requests) == ["a", "b", "c"]


def test_a_process_publishes_what_it_holds_and_a_silent_one_is_an_orphan(backend, monkeypatch):
    from celery.worker import state

    reserved = [request(task_names.RUN_SIMULATIONS, ["j1", "j2"]), request(task_names.RUN_SIMULATION, "j3")]
    monkeypatch.setattr(state, "reserved_requests", reserved)
    alive = held.HeldJobs("host:1", interval=0.1).start()
    silent = held.HeldJobs("host:2", interval=60)
    assert silent.publish()
    time.sleep(0.3)
    entry = json.loads(keys_redis().hget(held.HELD_KEY, "host:1"))
    assert entry["jobs"] == ["j1", "j2", "j3"] and time.time() - entry["ts"] < 1
    assert held.orphans(older_than=10) == {}
    time.sleep(0.6)
    assert held.orphans(older_than=0.5) == {"host:2": ["j1", "j2", "j3"]}  # host:1 is still writing
    held.forget(["host:2"])
    assert keys_redis().hkeys(held.HELD_KEY) == ["host:1"]
    assert alive.publish(request(task_names.RUN_SIMULATION, "j4"))  # arriving: not in Celery's registry yet
    assert json.loads(keys_redis().hget(held.HELD_KEY, "host:1"))["jobs"] == ["j1", "j2", "j3", "j4"]
    alive.stop()  # a graceful stop leaves nothing behind: the broker has the messages back
    assert keys_redis().hkeys(held.HELD_KEY) == []


def test_an_unreadable_entry_is_dropped_with_nothing_to_resend(backend):
    keys_redis().hset(held.HELD_KEY, "host:9", "not json")
    assert held.orphans(older_than=60) == {"host:9": []}


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
