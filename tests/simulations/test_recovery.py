"""Recovering jobs of dead workers: the state rules, on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from simulations import services
from simulations.errors import InvalidTransition
from simulations.models import EventOutbox, JobStatus, SimulationJob
from tests import factories

pytestmark = pytest.mark.django_db

ALIVE = lambda worker: True
DEAD = lambda worker: False


def running_job(worker="dead-host:1", minutes_ago=5):
    job = services.create_job(assessment_id="R-1", trades=factories.trades(), config=factories.config(), enqueue=False)
    services.start_job(job_id=job.id, worker_id=worker)
    SimulationJob.objects.filter(pk=job.id).update(started_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return job


def test_the_sweep_requeues_only_jobs_of_dead_workers(django_capture_on_commit_callbacks):
    dead = running_job("dead-host:1")
    alive = running_job("live-host:2")
    fresh = running_job("dead-host:3", minutes_ago=0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        changed = services.requeue_jobs_of_dead_workers(
            is_alive=lambda w: w.startswith("live"), max_attempts=3, grace_seconds=30
        )
    assert [j.id for j in changed] == [dead.id]
    assert SimulationJob.objects.get(pk=dead.id).status == JobStatus.PENDING
    assert SimulationJob.objects.get(pk=alive.id).status == JobStatus.RUNNING
    assert SimulationJob.objects.get(pk=fresh.id).status == JobStatus.RUNNING  # within the grace period
    assert len(callbacks) == 1  # re-enqueued after commit


def test_a_job_that_keeps_killing_workers_fails_with_the_reason():
    job = running_job()
    SimulationJob.objects.filter(pk=job.id).update(attempts=3)
    services.requeue_stale_job(job_id=job.id, dead_worker_id="dead-host:1", max_attempts=3)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "3 attempts" in job.error and "memory" in job.error
    assert EventOutbox.objects.filter(job=job, topic="montecarlo.simulation-completed").count() == 1


def test_requeue_is_conditional_on_the_holder():
    job = running_job("dead-host:1")
    assert services.requeue_stale_job(job_id=job.id, dead_worker_id="someone-else:9", max_attempts=3) is None
    assert SimulationJob.objects.get(pk=job.id).status == JobStatus.RUNNING


def test_a_redelivered_task_recovers_its_job_when_the_holder_is_dead():
    job = running_job("dead-host:1")
    assert services.claim_job(job_id=job.id, worker_id="new-host:2", is_alive=ALIVE, max_attempts=3) is None
    claimed = services.claim_job(job_id=job.id, worker_id="new-host:2", is_alive=DEAD, max_attempts=3)
    assert claimed is not None and claimed.worker_id == "new-host:2" and claimed.attempts == 2
    # one 'started' event however often the job starts
    assert EventOutbox.objects.filter(job=job, topic="montecarlo.simulation-started").count() == 1


def test_a_stale_claim_cannot_finish_the_job():
    job = running_job("dead-host:1")
    services.claim_job(job_id=job.id, worker_id="new-host:2", is_alive=DEAD, max_attempts=3)
    with pytest.raises(InvalidTransition, match="no longer held"):
        services.fail_job(job_id=job.id, error="late", claim=("dead-host:1", 1))
    done = services.run_job(job_id=job.id, worker_id="new-host:2", is_alive=DEAD)
    assert done is None  # new-host:2 already holds it: this delivery is a duplicate
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.worker_id == "new-host:2"


def test_jobs_pending_too_long_are_sent_again_once_per_period(django_capture_on_commit_callbacks, monkeypatch):
    from simulations.services import recovery

    sent = []
    monkeypatch.setattr(recovery, "enqueue_job", lambda job_id: sent.append(job_id))
    old = services.create_job(assessment_id="P-1", enqueue=False)
    services.create_job(assessment_id="P-2", enqueue=False)  # fresh
    SimulationJob.objects.filter(pk=old.id).update(updated_at=timezone.now() - dt.timedelta(minutes=20))
    assert services.reenqueue_stale_pending(older_than_seconds=600) == 1
    assert sent == [old.id]
    assert services.reenqueue_stale_pending(older_than_seconds=600) == 0  # not again right away
