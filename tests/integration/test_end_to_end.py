"""End to end on real parts: HTTP (live server) -> PostgreSQL -> Redis broker ->
a real ``celery worker`` process -> numba engine -> PostgreSQL -> HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from tests import factories

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def http() -> requests.Session:
    """Requests that carry a key of a client with every scope."""
    session = requests.Session()
    session.headers.update(factories.auth_headers())
    return session


def wait_for_finish(http: requests.Session, base: str, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"{base}/simulations/{job_id}", timeout=5).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout}s")


def test_a_job_created_over_http_is_completed_by_a_worker(http, live_server, celery_worker):
    response = http.post(
        f"{live_server.url}/simulations",
        json={
            "assessmentId": "E2E-1",
            "trades": factories.trades(120),
            "config": factories.config(paths=20_000),
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job = wait_for_finish(http, live_server.url, response.json()["jobId"])
    assert job["status"] == "completed", job["error"]
    assert job["result"]["paths"] == 20_000
    assert 0.0 <= job["result"]["probabilities"]["pass"]["estimate"] <= 1.0
    assert job["startedAt"] <= job["completedAt"]
    listed = http.get(f"{live_server.url}/simulations", params={"assessmentId": "E2E-1"}, timeout=5).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert listed["jobs"][0]["summary"]["paths"] == 20_000


def test_the_worker_fetches_trades_from_the_core_service(http, live_server, celery_worker, session_core_service):
    session_core_service.account_trades["E2E-FA"] = factories.trades(90, dated=True, seed=4)
    response = http.post(
        f"{live_server.url}/simulations",
        json={"fundedAccountId": "E2E-FA", "config": {"paths": 5_000, "seed": 1}},
        timeout=10,
    )
    job = wait_for_finish(http, live_server.url, response.json()["jobId"])
    assert job["status"] == "completed", job["error"]
    assert job["result"]["unit"] == "day"


def test_core_service_garbage_fails_the_job_not_the_worker(http, live_server, celery_worker, session_core_service):
    session_core_service.faults["/api/assessments/E2E-BAD/trades"] = ["garbage"]
    response = http.post(f"{live_server.url}/simulations", json={"assessmentId": "E2E-BAD"}, timeout=10)
    job = wait_for_finish(http, live_server.url, response.json()["jobId"])
    assert job["status"] == "failed"
    assert "not JSON" in job["error"]
    # the same worker goes on working
    ok = http.post(
        f"{live_server.url}/simulations",
        json={"assessmentId": "E2E-2", "trades": factories.trades(), "config": factories.config()},
        timeout=10,
    )
    assert wait_for_finish(http, live_server.url, ok.json()["jobId"])["status"] == "completed"


def test_a_batch_created_over_http_is_completed_by_a_worker_in_batch_tasks(http, live_server, celery_worker):
    from simulations.models import EventOutbox, SimulationJob

    jobs = [
        {"assessmentId": f"E2E-B{i}", "trades": factories.trades(40, seed=i), "config": factories.config(paths=500)}
        for i in range(40)
    ]
    response = http.post(f"{live_server.url}/simulations/batch", json={"jobs": jobs}, timeout=30)
    assert response.status_code == 202, response.text
    ids = [j["jobId"] for j in response.json()["jobs"]]
    finished = [wait_for_finish(http, live_server.url, job_id) for job_id in ids]
    assert {j["status"] for j in finished} == {"completed"}
    assert [j["assessmentId"] for j in finished] == [f"E2E-B{i}" for i in range(40)]
    assert {j["result"]["paths"] for j in finished} == {500}
    assert SimulationJob.objects.filter(pk__in=ids).values_list("attempts", flat=True).distinct().get() == 1
    assert EventOutbox.objects.filter(job_id__in=ids, topic="montecarlo.simulation-completed").count() == 40


def test_cancelling_a_running_job_stops_the_worker_running_it(http, live_server, celery_worker):
    from simulations.models import SimulationJob

    # 5e9 samples, every path to the horizon: several seconds of the worker's cores
    response = http.post(
        f"{live_server.url}/simulations",
        json={
            "assessmentId": "E2E-CANCEL",
            "trades": factories.trades(120),
            "config": {"paths": 5_000_000, "horizon": 1_000, "seed": 5},
        },
        timeout=10,
    )
    job_id = response.json()["jobId"]
    deadline = time.monotonic() + 60
    while True:  # running, and past its first progress write
        body = http.get(f"{live_server.url}/simulations/{job_id}", timeout=5).json()
        if body["status"] == "running" and (body["progress"] or {}).get("pathsDone", 0) > 0:
            break
        assert body["status"] in ("pending", "running") and time.monotonic() < deadline, body
        time.sleep(0.05)
    cancelled = http.post(f"{live_server.url}/simulations/{job_id}/cancel", timeout=10)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    stopped = f"job {job_id}: stopped, no longer held".encode()
    deadline = time.monotonic() + 30
    while stopped not in celery_worker.log_path.read_bytes():
        assert time.monotonic() < deadline, "the worker did not stop the cancelled job"
        time.sleep(0.1)
    job = SimulationJob.objects.get(pk=job_id)
    assert job.status == "cancelled" and job.result is None and 0 < job.paths_done < job.paths_total
    # the worker is free again
    ok = http.post(
        f"{live_server.url}/simulations",
        json={"assessmentId": "E2E-AFTER", "trades": factories.trades(), "config": factories.config()},
        timeout=10,
    )
    assert wait_for_finish(http, live_server.url, ok.json()["jobId"], timeout=30)["status"] == "completed"
