"""Request ids at the API: taken from ``X-Request-ID`` when plain, made otherwise,
returned, stored with the jobs a request creates, and sent in their task headers when
pushed (read back from the real Redis broker). HTTP through Django's stack on the real PostgreSQL."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from django.conf import settings

from simulations.models import SimulationJob
from simulations.services.dispatch import flush_dispatcher
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def body(name: str) -> dict:
    return {"assessmentId": name, "trades": factories.trades(), "config": factories.config()}


def queued_headers(job_id: str) -> list[dict]:
    """The headers of every message for ``job_id`` waiting on the simulations queue, once
    this process's dispatcher has sent what it holds."""
    assert flush_dispatcher()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for raw in broker.lrange("simulations", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]  # [args, kwargs, embed]
        if job_id in json.dumps(args):
            found.append(message["headers"])
    return found


def test_a_plain_request_id_is_kept_returned_stored_and_sent_with_the_task(settings):
    # pushed: the task carries it; pulled, the worker reads it from the job's row (its
    # lines carry it: tests/integration/test_logs_follow_a_job.py)
    settings.SIMULATION_API_PULL = False
    api = factories.api_client()
    response = api.post("/simulations", body("RID-1"), format="json", HTTP_X_REQUEST_ID="client-abc.123")
    assert response.status_code == 202, response.json()
    assert response["X-Request-ID"] == "client-abc.123"
    job_id = response.json()["jobId"]
    assert SimulationJob.objects.get(pk=job_id).request_id == "client-abc.123"
    assert [h["request_id"] for h in queued_headers(job_id)] == ["client-abc.123"]


@pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 65, "quote\"and'", "ünïcode"])
def test_a_missing_or_unfit_request_id_is_replaced_by_a_new_one(sent):
    api = factories.api_client()
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = api.post("/simulations", body("RID-2"), format="json", **headers)
    assert response.status_code == 202, response.json()
    made = response["X-Request-ID"]
    assert made != sent and len(made) == 32 and made.isalnum()
    assert SimulationJob.objects.get(pk=response.json()["jobId"]).request_id == made


def test_every_job_of_a_batch_shares_its_request_id_and_every_answer_carries_one():
    api = factories.api_client()
    response = api.post(
        "/simulations/batch",
        {"jobs": [body(f"RID-B{i}") for i in range(3)]},
        format="json",
        HTTP_X_REQUEST_ID="batch-7",
    )
    assert response.status_code == 202, response.json()
    ids = [j["jobId"] for j in response.json()["jobs"]]
    assert set(SimulationJob.objects.filter(pk__in=ids).values_list("request_id", flat=True)) == {"batch-7"}
    # errors and probes are answered with an id too
    assert api.post("/simulations", {}, format="json")["X-Request-ID"]
    assert api.get("/health", HTTP_X_REQUEST_ID="probe-1")["X-Request-ID"] == "probe-1"
