"""Cancelling a job: final at once, announced once, and the worker running it stops
at its next progress write. Real PostgreSQL, real HTTP through the app."""

from __future__ import annotations

import jsonschema
import pytest

from simulations import events, services
from simulations.errors import InvalidTransition, JobNotFound
from simulations.models import EventOutbox, JobStatus, SimulationJob
from simulations.services import execution
from tests import factories
from tests.simulations.api.test_probes_and_schema import json_schema, openapi

pytestmark = pytest.mark.django_db

# more than SMALL_JOB_MAX_SAMPLES, so the job is claimed and reports progress; every
# path runs to the horizon (no rules), in 8 chunks of paths
BIG = {"paths": 500_000, "horizon": 50, "seed": 3}


def completed_events(job_id) -> list[dict]:
    return list(
        EventOutbox.objects.filter(job_id=job_id, topic=events.SIMULATION_COMPLETED).values_list("payload", flat=True)
    )


def test_a_pending_job_is_cancelled_announced_and_never_claimed():
    job = services.create_job(assessment_id="C-1", trades=factories.trades(), config=factories.config(), enqueue=False)
    cancelled = services.cancel_job(job_id=str(job.id))
    assert cancelled.status == JobStatus.CANCELLED and cancelled.completed_at is not None
    assert cancelled.error == "cancelled by request"
    (payload,) = completed_events(job.id)
    assert payload["status"] == "cancelled" and payload["jobId"] == str(job.id)
    assert services.start_job(job_id=job.id, worker_id="w:1") is None
    assert services.run_job(job_id=job.id, worker_id="w:1") is None  # a late delivery does nothing
    assert SimulationJob.objects.get(pk=job.id).status == JobStatus.CANCELLED
    assert len(completed_events(job.id)) == 1


def test_a_finished_or_unknown_job_cannot_be_cancelled():
    job = services.create_job(assessment_id="C-2", trades=factories.trades(), config=factories.config(), enqueue=False)
    services.run_job(job_id=job.id, worker_id="w:1")
    with pytest.raises(InvalidTransition, match="is completed"):
        services.cancel_job(job_id=job.id)
    with pytest.raises(InvalidTransition, match="is cancelled"):
        other = services.create_job(assessment_id="C-3", enqueue=False)
        services.cancel_job(job_id=other.id)
        services.cancel_job(job_id=other.id)
    for unknown in ("not-a-uuid", "8d3c5a52-0000-4000-8000-000000000000"):
        with pytest.raises(JobNotFound):
            services.cancel_job(job_id=unknown)


def test_a_running_job_stops_at_its_next_progress_write(settings, monkeypatch):
    settings.SIMULATION_PROGRESS_INTERVAL = 0  # every chunk writes progress
    job = services.create_job(assessment_id="C-4", trades=factories.trades(), config=BIG, enqueue=False)
    writes = []
    record = execution.record_progress

    def cancel_after_first_chunk(**kwargs):
        writes.append(kwargs["paths_done"])
        held = record(**kwargs)
        if len(writes) == 1:
            services.cancel_job(job_id=job.id)  # as the API would, while the worker runs
        return held

    monkeypatch.setattr(execution, "record_progress", cancel_after_first_chunk)
    assert services.run_job(job_id=job.id, worker_id="w:9") is None
    assert writes == [65_536, 131_072]  # the write after the cancel found the job gone: no third chunk
    stopped = SimulationJob.objects.get(pk=job.id)
    assert stopped.status == JobStatus.CANCELLED and stopped.result is None
    assert stopped.paths_done == 65_536 < stopped.paths_total
    assert [p["status"] for p in completed_events(job.id)] == ["cancelled"]


def test_the_same_job_uncancelled_runs_to_the_end(settings):
    """The control for the test above: the same job, not cancelled, completes all paths."""
    settings.SIMULATION_PROGRESS_INTERVAL = 0
    job = services.create_job(assessment_id="C-5", trades=factories.trades(), config=BIG, enqueue=False)
    done = services.run_job(job_id=job.id, worker_id="w:9")
    assert done.status == JobStatus.COMPLETED and done.result["paths"] == 500_000


def test_cancel_over_http():
    api = factories.api_client()
    job = services.create_job(assessment_id="C-6", trades=factories.trades(), config=factories.config(), enqueue=False)
    response = api.post(f"/simulations/{job.id}/cancel")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["jobId"] == str(job.id) and body["status"] == "cancelled" and body["error"] == "cancelled by request"
    jsonschema.validate(body, json_schema(openapi(), "JobCancelledOutput"))
    again = api.post(f"/simulations/{job.id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert api.post("/simulations/nope/cancel").status_code == 404
    listed = api.get("/simulations", {"status": "cancelled"}).json()["jobs"]
    assert [j["id"] for j in listed] == [str(job.id)]
    assert "post" in openapi()["paths"]["/simulations/{job_id}/cancel"]
