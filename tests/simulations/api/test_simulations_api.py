"""The REST contract: create, read, list, errors. HTTP through Django's real stack
(DRF test client) on the real PostgreSQL; the worker side has its own tests."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from simulations import services
from simulations.models import EventOutbox, JobStatus, SimulationJob
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return factories.api_client()


def post(api, body, **headers):
    return api.post("/simulations", body, format="json", **headers)


def test_create_returns_202_with_the_job_id_and_enqueues_after_commit(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(api, {"assessmentId": "A-1", "trades": factories.trades(), "config": factories.config()})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending"
    job = SimulationJob.objects.get(pk=body["jobId"])
    assert job.assessment_id == "A-1" and job.status == JobStatus.PENDING and job.trigger == "api"
    assert job.input_data["config"]["rules"]["profit_target"] == 2_500
    assert len(callbacks) == 2  # the metric and the enqueue, both only after commit


def test_snake_case_keys_are_accepted_too(api):
    response = post(api, {"funded_account_id": "FA-9", "config": {"block_size": 3, "method": "block"}})
    assert response.status_code == 202, response.json()
    job = SimulationJob.objects.get(pk=response.json()["jobId"])
    assert job.funded_account_id == "FA-9" and job.input_data["trades"] is None
    assert job.input_data["config"] == {"block_size": 3, "method": "block"}


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "assessmentId"),
        ({"assessmentId": ""}, "assessmentId"),
        ({"assessmentId": "x" * 65}, "assessmentId"),
        ({"assessmentId": "A", "config": {"paths": 0}}, "config.paths"),
        ({"assessmentId": "A", "config": {"method": "magic"}}, "config.method"),
        ({"assessmentId": "A", "config": {"rules": {"maxDrawdown": -1}}}, "config.rules.maxDrawdown"),
        ({"assessmentId": "A", "config": {"blockSize": "big"}}, "config.blockSize"),
        ({"assessmentId": "A", "config": {"nonsense": 1}}, "config.nonsense"),
        ({"assessmentId": "A", "config": [1, 2]}, "config"),
        ({"assessmentId": "A", "trades": []}, "trades"),
        ({"assessmentId": "A", "trades": "lots"}, "trades"),
        ({"assessmentId": "A", "trades": [{"pnl": 1}, {"pnl": "x"}]}, "trades[1].pnl"),
        ({"assessmentId": "A", "trades": [{"price": 1}]}, "trades[0]"),
        ({"assessmentId": "A", "trades": [1.0, None]}, "trades[1]"),
    ],
)
def test_bad_input_gets_400_with_reasons_per_field(api, body, field):
    response = post(api, body)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "invalid"
    assert field in data["fields"], data
    assert all(isinstance(r, str) and r for r in data["fields"][field])
    assert SimulationJob.objects.count() == 0


def test_a_body_that_is_not_json_gets_a_json_400(api):
    response = api.post("/simulations", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "invalid"


def test_a_json_array_body_gets_400(api):
    response = api.post("/simulations", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_idempotency_key_returns_the_same_job(api):
    body = {"assessmentId": "A-2", "trades": factories.trades(), "config": factories.config()}
    first = post(api, body, HTTP_IDEMPOTENCY_KEY="key-1")
    second = post(api, body, HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["jobId"] == second.json()["jobId"]
    assert SimulationJob.objects.count() == 1
    other = post(api, body, HTTP_IDEMPOTENCY_KEY="key-2")
    assert other.json()["jobId"] != first.json()["jobId"]


def test_idempotency_key_reused_for_another_request_is_a_409(api):
    post(api, {"assessmentId": "A-3"}, HTTP_IDEMPOTENCY_KEY="key-3")
    response = post(api, {"assessmentId": "A-4"}, HTTP_IDEMPOTENCY_KEY="key-3")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_get_returns_the_whole_job_in_camel_case(api):
    job = services.create_job(assessment_id="A-5", trades=factories.trades(), config=factories.config(), enqueue=False)
    services.run_job(job_id=job.id, worker_id="test:1")
    response = api.get(f"/simulations/{job.id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "id",
        "assessmentId",
        "fundedAccountId",
        "status",
        "inputData",
        "result",
        "error",
        "createdAt",
        "startedAt",
        "completedAt",
        "progress",
    }
    assert body["status"] == "completed" and body["progress"] is None
    assert body["result"]["probabilities"]["pass"]["ci95Low"] <= body["result"]["probabilities"]["pass"]["estimate"]
    assert body["result"]["finalPnl"]["percentiles"]["p50"] is not None
    assert body["startedAt"] and body["completedAt"]


def test_progress_is_shown_while_running(api):
    job = services.create_job(assessment_id="A-6", trades=factories.trades(), enqueue=False)
    services.start_job(job_id=job.id, worker_id="test:1")
    services.record_progress(job_id=job.id, paths_done=300, paths_total=1000)
    body = api.get(f"/simulations/{job.id}").json()
    assert body["status"] == "running"
    assert body["progress"] == {"pathsDone": 300, "pathsTotal": 1000}


@pytest.mark.parametrize("path", [f"/simulations/{uuid.uuid4()}", "/simulations/not-a-uuid", "/nothing-here"])
def test_unknown_things_are_json_404s(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_wrong_method_is_a_json_405(api):
    response = api.put("/simulations", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_list_filters_newest_first_and_paginates(api):
    ids = []
    for i in range(5):
        job = services.create_job(assessment_id="A-L" if i % 2 else "A-M", funded_account_id=f"FA-{i}", enqueue=False)
        ids.append(str(job.id))
    services.fail_job(job_id=ids[0], error="boom")
    body = api.get("/simulations", {"assessmentId": "A-M"}).json()
    assert [j["id"] for j in body["jobs"]] == [ids[4], ids[2], ids[0]]
    assert body["count"] == 3
    assert [j["id"] for j in api.get("/simulations", {"status": "failed"}).json()["jobs"]] == [ids[0]]
    assert [j["id"] for j in api.get("/simulations", {"fundedAccountId": "FA-3"}).json()["jobs"]] == [ids[3]]
    page = api.get("/simulations", {"pageSize": 2}).json()
    assert len(page["jobs"]) == 2 and page["count"] == 5 and "page=2" in page["next"]
    assert "inputData" not in page["jobs"][0]


def test_list_with_a_bad_filter_is_a_400(api):
    response = api.get("/simulations", {"status": "exploded"})
    assert response.status_code == 400
    assert "status" in response.json()["fields"]


def test_services_write_the_outbox_with_each_state_change():
    job = services.create_job(assessment_id="A-7", trades=factories.trades(), config=factories.config(), enqueue=False)
    assert not EventOutbox.objects.exists()
    services.run_job(job_id=job.id, worker_id="test:1")
    topics = list(EventOutbox.objects.filter(job=job).values_list("topic", flat=True))
    assert topics == ["montecarlo.simulation-started", "montecarlo.simulation-completed"]
    completed = EventOutbox.objects.get(job=job, topic="montecarlo.simulation-completed")
    assert completed.payload["status"] == "completed" and completed.payload["jobId"] == str(job.id)
    assert completed.key == "A-7"


def post_batch(api, jobs):
    return api.post("/simulations/batch", {"jobs": jobs}, format="json")


def test_a_batch_creates_every_job_in_order_and_enqueues_after_commit(api, django_capture_on_commit_callbacks):
    jobs = [{"assessmentId": f"BA-{i}", "trades": factories.trades(), "config": factories.config()} for i in range(3)]
    jobs.append({"fundedAccountId": "BF-1"})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_batch(api, jobs)
    assert response.status_code == 202, response.json()
    created = response.json()["jobs"]
    assert [c["status"] for c in created] == ["pending"] * 4
    rows = SimulationJob.objects.in_bulk([c["jobId"] for c in created])
    assert [rows[uuid.UUID(c["jobId"])].assessment_id for c in created] == ["BA-0", "BA-1", "BA-2", None]
    assert rows[uuid.UUID(created[3]["jobId"])].funded_account_id == "BF-1"
    assert len(callbacks) == 2  # the metric and the enqueue, only after commit


def test_a_batch_with_one_bad_job_creates_none_and_names_it(api):
    jobs = [{"assessmentId": "OK-1"}, {"assessmentId": "BAD", "config": {"paths": 0}}, {"trades": []}]
    response = post_batch(api, jobs)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "jobs[1].config.paths" in fields and "jobs[2].assessmentId" in fields, fields
    assert SimulationJob.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"jobs": []}, {"jobs": "many"}, {"jobs": [{"assessmentId": "x" * 65}]}])
def test_a_malformed_batch_is_a_400(api, body):
    response = api.post("/simulations/batch", body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert SimulationJob.objects.count() == 0


def test_a_batch_larger_than_the_limit_is_a_400(api, settings):
    settings.SIMULATION_BATCH_MAX_JOBS = 2
    response = post_batch(api, [{"assessmentId": f"L-{i}"} for i in range(3)])
    assert response.status_code == 400 and "jobs" in response.json()["fields"]
    assert SimulationJob.objects.count() == 0
