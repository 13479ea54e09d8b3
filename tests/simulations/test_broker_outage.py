"""The broker refusing what a created job sends: the API still answers with the job
(pending, recorded), and beat's sweep sends it once the broker is back. Pulled (the
default), a refused wake-up; pushed, a refused message of job ids. Real PostgreSQL,
real Redis, and a real refused connection (nothing listens on port 1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from montecarlo.celery import app as celery_app
from simulations import metrics, services
from simulations.models import JobStatus, SimulationJob
from simulations.services.dispatch import flush_dispatcher
from tests import factories
from tests.broker import queued_job_ids, queued_wake_ups

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit sends for real


def _use_broker(url: str | None) -> None:
    """Point the app's publishing at ``url`` (None: back to the broker URL). Celery
    publishes through the write URL, which the environment's CELERY_BROKER_URL does
    not override; the connection and producer pools are built lazily from it."""
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down():
    _use_broker("redis://127.0.0.1:1/0")
    yield lambda: _use_broker(None)
    _use_broker(None)


def _refused() -> float:
    """Sends the broker refused, once this process's dispatcher has tried to send its jobs."""
    assert flush_dispatcher()
    return metrics.ENQUEUE_FAILURES._value.get()


def _post_one_and_a_batch() -> list[str]:
    api = factories.api_client()
    one = api.post(
        "/simulations",
        {"assessmentId": "OUT-1", "trades": factories.trades(), "config": factories.config()},
        format="json",
    )
    assert one.status_code == 202, one.content
    many = api.post(
        "/simulations/batch",
        {
            "jobs": [
                {"assessmentId": f"OUT-B{i}", "trades": factories.trades(), "config": factories.config()}
                for i in range(3)
            ]
        },
        format="json",
    )
    assert many.status_code == 202, many.content
    ids = [one.json()["jobId"]] + [job["jobId"] for job in many.json()["jobs"]]
    assert set(SimulationJob.objects.filter(id__in=ids).values_list("status", flat=True)) == {JobStatus.PENDING}
    return ids


def test_pulled_jobs_created_while_the_broker_is_down_are_answered_and_woken_for_by_the_sweep(broker_down, settings):
    settings.SIMULATION_DISPATCH_WINDOW_MS = 0  # each request its own wake-up (else the second joins the first's)
    before, queued, wake_ups = _refused(), queued_job_ids(), queued_wake_ups()
    ids = _post_one_and_a_batch()
    assert _refused() - before == 2  # each request's wake-up, refused; the key was let go
    assert queued_wake_ups() == wake_ups and queued_job_ids() == queued

    broker_down()  # the broker is back: the sweep wakes the workers for jobs left waiting
    assert not services.wake_for_waiting_api_jobs()  # not yet waiting longer than a wake-up's TTL
    SimulationJob.objects.filter(id__in=ids).update(updated_at=timezone.now() - dt.timedelta(minutes=1))
    assert services.wake_for_waiting_api_jobs()
    assert queued_wake_ups() == wake_ups + 1
    assert sorted(map(str, services.reserve_pending_jobs(token="after-outage", limit=10))) == sorted(ids)
    assert _refused() - before == 2


def test_pushed_jobs_created_while_the_broker_is_down_are_answered_and_sent_by_the_sweep_later(broker_down, settings):
    settings.SIMULATION_API_PULL = False
    before, queued = _refused(), queued_job_ids()
    ids = _post_one_and_a_batch()
    assert _refused() - before == 4
    assert queued_job_ids() == queued  # nothing reached the real broker

    broker_down()  # the broker is back: the sweep sends what is old enough
    assert services.reenqueue_stale_pending(older_than_seconds=0) == 4
    assert sorted(queued_job_ids()) == sorted(queued + ids)
    assert _refused() - before == 4


@pytest.mark.parametrize("pulled", [True, False])
def test_a_sent_job_counts_no_refusal(settings, pulled):
    settings.SIMULATION_API_PULL = pulled
    before, queued, wake_ups = _refused(), queued_job_ids(), queued_wake_ups()
    job = services.create_job(assessment_id="OUT-OK", trades=factories.trades(), config=factories.config())
    if pulled:
        assert queued_job_ids() == queued and queued_wake_ups() == wake_ups + 1
    else:
        assert sorted(queued_job_ids()) == sorted(queued + [str(job.id)])
    assert _refused() == before
