"""Chaos, bounded: the service's processes under load from Kafka and from bulk intake,
killed as a node failure would kill them, and Kafka away for a while; the delivery
contract checked after:
every job exactly once and finished, nothing stuck, events within their documented
duplicates, the bad events dead-lettered once, and the recovery time."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from django.conf import settings as django_settings
from django.db import connection

from simulations import events, services
from simulations.models import EventOutbox, JobStatus, SimulationJob
from tests import factories
from tests.integration.test_kafka_bridge import BOOTSTRAP, python_produce, wait
from workers import heartbeat, schedules

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Each job takes tens of milliseconds on one core: the stream lasts long enough for
# the kills to land in the middle of it.
CONFIG = {"paths": 300_000, "seed": 5, "rules": {"profitTarget": 1_500, "maxDrawdown": 1_200}}
FROM_KAFKA, FROM_INTAKE, BAD, REPEATED = 150, 100, 5, 20


def read_all(topic: str, at_least: int, timeout: float = 90.0, settle: float = 3.0) -> list:
    """Every message of ``topic``: at least ``at_least``, then until none came for ``settle`` s."""
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": f"chaos-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list = []
    deadline, last = time.monotonic() + timeout, time.monotonic()
    try:
        while time.monotonic() < deadline and (len(out) < at_least or time.monotonic() - last < settle):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
                last = time.monotonic()
    finally:
        consumer.close()
    return out


def finished() -> int:
    connection.close()
    return SimulationJob.objects.filter(status__in=[JobStatus.COMPLETED, JobStatus.FAILED]).count()


def test_kills_under_load_keep_the_delivery_contract(
    kafka_topics, make_worker, make_beat, make_bridge, session_core_service, settings
):
    settings.STALE_JOB_SWEEP_INTERVAL = 1
    schedules.ensure_schedules()
    kafka_ids = [f"CH-K{i}" for i in range(FROM_KAFKA)]
    for assessment in kafka_ids:
        session_core_service.assessment_trades[assessment] = factories.trades(100, seed=len(assessment))
    workers = [make_worker("chaos-a", queues="simulations"), make_worker("chaos-b", queues="simulations")]
    make_worker("chaos-upkeep", queues="maintenance")  # the sweep on its own worker, as deployed
    make_beat()
    bridge = make_bridge("chaos-bridge", KAFKA_BATCH_SIZE="10")
    started = time.monotonic()

    good = [(a, json.dumps({"eventId": f"ev-{a}", "assessmentId": a, "config": CONFIG}).encode()) for a in kafka_ids]
    bad = [(f"CH-BAD{i}", b"{not json") for i in range(BAD)]
    python_produce(kafka_topics[events.ASSESSMENT_COMPLETED], good + bad + good[:REPEATED])  # some delivered twice
    services.create_jobs(
        [
            {"assessment_id": f"CH-I{i}", "trades": factories.trades(100, seed=i), "config": CONFIG}
            for i in range(FROM_INTAKE)
        ]
    )  # bulk messages of many jobs each

    total = FROM_KAFKA + FROM_INTAKE
    wait(lambda: finished() >= 20, 90, "the stream to be under way", step=0.05)
    workers[0].kill()  # a node dies: a worker's main process and its child, holding messages
    workers.append(make_worker("chaos-c", queues="simulations"))
    wait(lambda: finished() >= 60, 90, "more jobs done", step=0.05)
    bridge.kill()  # the bridge, between polls and relay passes
    make_bridge("chaos-bridge-again", KAFKA_BATCH_SIZE="10")
    running = wait(
        lambda: (
            SimulationJob.objects.filter(status=JobStatus.RUNNING, worker_id__startswith=heartbeat.host_name())
            .exclude(worker_id="")
            .first()
        ),
        60,
        "a running job to kill the child of",
        step=0.05,
    )
    os.kill(int(running.worker_id.rsplit(":", 1)[1]), signal.SIGKILL)  # the OOM killer, in a child
    last_kill = time.monotonic()
    assert finished() < total, "the stream ended before the faults: make the jobs longer"
    kafka = ["bash", str(ROOT / "deploy" / "kafka.sh")]
    subprocess.run(kafka + ["stop"], check=True, capture_output=True)  # Kafka away while jobs finish
    try:
        time.sleep(8)
    finally:
        subprocess.run(kafka + ["start"], check=True, capture_output=True)
    kafka_back = time.monotonic()

    try:
        wait(lambda: finished() >= total, 120, f"all {total} jobs to finish", step=0.2)
    except AssertionError:
        connection.close()
        left = SimulationJob.objects.exclude(status=JobStatus.COMPLETED)
        made = set(SimulationJob.objects.values_list("assessment_id", flat=True))
        raise AssertionError(
            f"unfinished: {Counter((j.status, j.trigger, j.worker_id) for j in left)}; "
            f"never made: {sorted({*kafka_ids, *(f'CH-I{i}' for i in range(FROM_INTAKE))} - made)[:10]}"
        ) from None
    recovery = time.monotonic() - last_kill
    connection.close()
    jobs = list(SimulationJob.objects.all())
    # exactly once: one job per assessment, every one completed, none left pending or running
    assert len(jobs) == total and len({j.assessment_id for j in jobs}) == total
    assert Counter(j.status for j in jobs) == {JobStatus.COMPLETED: total}, [j.error for j in jobs if j.error][:3]
    assert recovery < 90, recovery

    # events: once per job at least, duplicates within the bound of one relay kill
    wait(lambda: not EventOutbox.objects.exists(), 90, "the outbox to drain")
    drained = time.monotonic() - kafka_back
    bound = django_settings.OUTBOX_BATCH_SIZE
    duplicates: dict[str, int] = {}
    for name in (events.SIMULATION_STARTED, events.SIMULATION_COMPLETED):
        messages = read_all(kafka_topics[name], at_least=total)
        ids = Counter(dict(m.headers() or ())["event-id"] for m in messages)
        per_job = Counter(json.loads(m.value())["jobId"] for m in messages)
        assert set(per_job) == {str(j.id) for j in jobs}, name
        duplicates[name] = sum(ids.values()) - len(ids)
        assert duplicates[name] <= bound, (name, duplicates[name])
    dead = read_all(kafka_topics[events.ASSESSMENT_COMPLETED_DLQ], at_least=BAD)
    assert len({dict(m.headers())["dlq.original.offset"] for m in dead}) == BAD
    assert len(dead) - BAD <= bound
    logging.getLogger(__name__).warning(  # the figures, for the record (pytest -rA shows them)
        "chaos: %d jobs, %.0f s in all, all finished %.1f s after the last kill, the outbox empty %.1f s after"
        " Kafka returned; duplicate events %s, DLQ copies %d",
        total,
        time.monotonic() - started,
        recovery,
        drained,
        duplicates,
        len(dead),
    )
