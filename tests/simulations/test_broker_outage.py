"""The broker refusing a created job's message: the API still answers with the job
(pending, recorded), and beat's sweep sends it once the broker is back. Real
PostgreSQL, real Redis, and a real refused connection (nothing listens on port 1)."""

from __future__ import annotations

import pytest

from montecarlo.celery import app as celery_app
from simulations import metrics, services
from simulations.models import JobStatus, SimulationJob
from simulations.services.dispatch import flush_dispatcher
from tests import factories
from tests.broker import queued_job_ids

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
    """Jobs the broker refused, once this process's dispatcher has tried to send them."""
    assert flush_dispatcher()
    return metrics.ENQUEUE_FAILURES._value.get()


def test_a_job_created_while_the_broker_is_down_is_answered_and_sent_by_the_sweep_later(broker_down):
    api = factories.api_client()
    before, queued = _refused(), queued_job_ids()
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
    assert _refused() - before == 4
    assert set(SimulationJob.objects.filter(id__in=ids).values_list("status", flat=True)) == {JobStatus.PENDING}
    assert queued_job_ids() == queued  # nothing reached the real broker

    broker_down()  # the broker is back: the sweep sends what is old enough
    assert services.reenqueue_stale_pending(older_than_seconds=0) == 4
    assert sorted(queued_job_ids()) == sorted(queued + ids)
    assert _refused() - before == 4


def test_a_sent_job_counts_no_refusal():
    before, queued = _refused(), queued_job_ids()
    job = services.create_job(assessment_id="OUT-OK", trades=factories.trades(), config=factories.config())
    assert sorted(queued_job_ids()) == sorted(queued + [str(job.id)]) and _refused() == before
