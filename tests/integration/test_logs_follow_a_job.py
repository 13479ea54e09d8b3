"""One id follows a job through every process: real gunicorn, a real worker and a real
Kafka bridge, all logging JSON (``LOG_FORMAT=json``). The id a client sends in
``X-Request-ID`` (or a Kafka event in its ``request-id`` header) comes back in the
response, is on the web's, the worker's and the bridge's lines for that job, and on the
job's Kafka events."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from simulations.models import SimulationJob
from tests import factories
from tests.integration.test_kafka_bridge import BOOTSTRAP, read_topic, wait

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
JSON_LOGS = {"LOG_FORMAT": "json", "LOG_LEVELS": "workers.kafka.relay=DEBUG"}


def lines(path: Path) -> list[dict]:
    """Every JSON line of a log (a process's own prints, if any, are not ours to read)."""
    out = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            out.append(json.loads(raw))
    return out


def about(path: Path, **ids: str) -> list[dict]:
    return [line for line in lines(path) if all(line.get(k) == v for k, v in ids.items())]


def test_one_request_id_follows_a_job_from_its_post_to_its_kafka_event(
    make_web, make_worker, make_bridge, kafka_topics
):
    base, _, web_log = make_web(**JSON_LOGS)
    worker = make_worker("follow", **JSON_LOGS)
    bridge = make_bridge(**JSON_LOGS)
    request_id = f"follow-{uuid.uuid4().hex[:12]}"

    created = requests.post(
        f"{base}/simulations",
        json={"assessmentId": "FOLLOW-1", "trades": factories.trades(60), "config": factories.config(paths=2_000)},
        headers={**factories.auth_headers(), "X-Request-ID": request_id},
        timeout=10,
    )
    assert created.status_code == 202, created.text
    assert created.headers["X-Request-ID"] == request_id
    job_id = created.json()["jobId"]
    wait(lambda: SimulationJob.objects.filter(pk=job_id, status="completed").exists(), 90, "the job to complete")
    assert SimulationJob.objects.get(pk=job_id).request_id == request_id

    # the job's Kafka events carry the id
    events = [
        m
        for m in read_topic(kafka_topics["montecarlo.simulation-completed"], 1)
        if dict(m.headers())["job-id"].decode() == job_id
    ]
    assert [dict(m.headers())["request-id"].decode() for m in events] == [request_id]

    # and so does every process's line about it
    web = about(web_log, request_id=request_id)
    assert any(line["message"].startswith(f"job {job_id} created") for line in web), web
    assert any(line["logger"] == "gunicorn.access" for line in lines(web_log) if request_id in line["message"])
    ran = about(worker.log_path, request_id=request_id, job_id=job_id)
    assert any(line["message"].startswith(f"job {job_id}: completed") for line in ran), worker.tail()
    assert all(line.get("task_id") and line.get("worker_id") for line in ran), ran
    wait(lambda: about(bridge.log_path, request_id=request_id, job_id=job_id), 30, "the relay's line for the job")
    published = {line["message"].split()[1] for line in about(bridge.log_path, request_id=request_id, job_id=job_id)}
    assert "montecarlo.simulation-completed" in published, published


def test_a_kafka_event_s_request_id_follows_its_job(make_worker, make_bridge, kafka_topics):
    """The producer's id in the ``request-id`` header; an event without one gets an id
    made from where it lies in Kafka, the same on a redelivery."""
    worker = make_worker("follow-kafka", **JSON_LOGS)
    bridge = make_bridge(**JSON_LOGS)
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    request_id = f"platform-{uuid.uuid4().hex[:12]}"
    for assessment, headers in (("FOLLOW-K1", [("request-id", request_id.encode())]), ("FOLLOW-K2", [])):
        producer.produce(
            kafka_topics["assessment.completed"],
            key=assessment.encode(),
            value=json.dumps({"assessmentId": assessment, "config": {"paths": 500, "seed": 1}}).encode(),
            headers=headers,
        )
    producer.flush(10)
    first = wait(lambda: SimulationJob.objects.filter(assessment_id="FOLLOW-K1").first(), 60, "the event's job")
    second = wait(lambda: SimulationJob.objects.filter(assessment_id="FOLLOW-K2").first(), 60, "the other job")
    assert first.request_id == request_id
    assert second.request_id.startswith(f"kafka:{kafka_topics['assessment.completed']}:")
    wait(
        lambda: SimulationJob.objects.filter(pk=first.pk, status__in=["completed", "failed"]).exists(),
        90,
        "the job to finish",
    )
    time.sleep(0.5)
    assert about(worker.log_path, request_id=request_id, job_id=str(first.pk)), worker.tail()
    wait(lambda: about(bridge.log_path, request_id=request_id, job_id=str(first.pk)), 30, "the relay's line")
