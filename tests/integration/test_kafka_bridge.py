"""The Kafka edge on a real broker (KRaft, from Maven Central jars), with real
bridge and worker processes and the real PostgreSQL and Redis."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, Producer
from django.db import connection

from simulations import services
from simulations.models import EventOutbox, JobStatus, SimulationJob
from tests import factories
from tests.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def wait(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection.close()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_topic(topic: str, count: int, timeout: float = 60.0) -> list:
    """Every message of ``topic`` from the start, until ``count`` arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def kcat_produce(topic: str, lines: list[str]) -> None:
    """Produce ``key:value`` lines with kcat, an independent client. Idempotent, so a
    send retried while a new topic's leader settles keeps its place in the partition
    (without it an event once landed after the next ones with its key)."""
    subprocess.run(
        ["kcat", "-b", BOOTSTRAP, "-t", topic, "-P", "-K:", "-X", "enable.idempotence=true"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=30,
    )


def python_produce(topic: str, events: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for key, value in events:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def test_events_become_one_job_per_assessment_and_bad_ones_go_to_the_dlq(
    kafka_topics, make_bridge, make_worker, session_core_service
):
    for name in ("K-A1", "K-A2", "K-A3"):
        session_core_service.assessment_trades[name] = factories.trades(60)
    topic = kafka_topics["assessment.completed"]
    kcat_produce(
        topic,
        [
            'K-A1:{"eventId": "e1", "assessmentId": "K-A1", "config": {"paths": 2000, "seed": 1}}',
            'K-A2:{"eventId": "e2", "assessmentId": "K-A2"}',
            'K-A1:{"eventId": "e3", "assessmentId": "K-A1"}',  # the same assessment, redelivered
            'K-A1:{"eventId": "e1", "assessmentId": "K-A1", "config": {"paths": 2000, "seed": 1}}',
            "bad1:this is not json",
            'bad2:{"traderId": 7}',
        ],
    )
    python_produce(
        topic,
        [
            ("K-A3", b'{"assessmentId": "K-A3", "config": {"paths": 1000}}'),
            ("K-A3", b'{"assessmentId": "K-A3", "config": {"paths": 1000}}'),
            ("bad3", b'{"assessmentId": "K-A9", "config": {"paths": -1}}'),
        ],
    )
    make_worker("kafka-worker")
    make_bridge()
    wait(lambda: SimulationJob.objects.filter(status=JobStatus.COMPLETED).count() >= 3, 90, "3 completed jobs")
    jobs = {j.assessment_id: j for j in SimulationJob.objects.all()}
    assert sorted(jobs) == ["K-A1", "K-A2", "K-A3"]  # one per assessment, none for the bad ones
    assert SimulationJob.objects.count() == 3
    assert {j.trigger for j in jobs.values()} == {"kafka"}
    assert jobs["K-A1"].result["paths"] == 2000  # the first of its events made it

    dlq = read_topic(kafka_topics["assessment.completed.dlq"], 3)
    reasons = {m.key().decode(): dict(m.headers())["dlq.reason"].decode() for m in dlq}
    assert set(reasons) == {"bad1", "bad2", "bad3"}
    assert "not JSON" in reasons["bad1"] and "assessmentId: missing" in reasons["bad2"]
    assert "config.paths" in reasons["bad3"]
    assert [m.value() for m in dlq if m.key() == b"bad1"] == [b"this is not json"]  # the original bytes

    started = read_topic(kafka_topics["montecarlo.simulation-started"], 3)
    completed = read_topic(kafka_topics["montecarlo.simulation-completed"], 3)
    ids = {str(j.id) for j in jobs.values()}
    assert sorted(json.loads(m.value())["jobId"] for m in started) == sorted(ids)
    done = {json.loads(m.value())["jobId"]: json.loads(m.value()) for m in completed}
    assert set(done) == ids and {d["status"] for d in done.values()} == {"completed"}
    assert done[str(jobs["K-A1"].id)]["summary"]["paths"] == 2000
    assert {m.key().decode() for m in completed} == {"K-A1", "K-A2", "K-A3"}
    wait(lambda: not EventOutbox.objects.exists(), 30, "an empty outbox (acknowledged rows are deleted)")


def test_sigkill_mid_stream_loses_no_event_and_duplicates_no_job(kafka_topics, make_bridge):
    topic = kafka_topics["assessment.completed"]
    total = 3000
    events = [(f"S-{i}", json.dumps({"eventId": f"e{i}", "assessmentId": f"S-{i}"}).encode()) for i in range(total)]
    python_produce(topic, events)
    # Small poll batches: the victim commits many small transactions, so it is still
    # mid-stream when killed (with the default 100 it once finished 1000 events first).
    bridge = make_bridge("bridge-victim", KAFKA_BATCH_SIZE="10")
    wait(lambda: SimulationJob.objects.count() >= 150, 90, "the bridge to be mid-stream", step=0.02)
    bridge.kill()
    mid = SimulationJob.objects.count()
    assert mid < total, "the bridge finished before it could be killed: make the stream longer"
    make_bridge("bridge-restarted")
    wait(lambda: SimulationJob.objects.count() >= total, 120, f"all {total} jobs")
    time.sleep(2)  # anything redelivered after the restart has been handled by now
    assert SimulationJob.objects.count() == total
    assert SimulationJob.objects.values("assessment_id").distinct().count() == total
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()  # tasks nobody needs


def test_sigterm_leaves_the_group_cleanly_with_offsets_committed(kafka_topics, make_bridge):
    topic = kafka_topics["assessment.completed"]
    python_produce(topic, [(f"T-{i}", json.dumps({"assessmentId": f"T-{i}"}).encode()) for i in range(20)])
    bridge = make_bridge("bridge-term")
    wait(lambda: SimulationJob.objects.count() >= 20, 60, "20 jobs")
    assert bridge.stop() == 0
    log = bridge.log_path.read_text()
    assert "kafka bridge stopped" in log
    # its heap frozen once set up (simulations.process.freeze_heap): Django's, numpy's, numba's objects
    assert int(re.findall(r"kafka bridge up: .*; (\d+) objects frozen", log)[-1]) > 100_000
    # a restart in the same group starts after the committed offsets: nothing is handled again
    python_produce(topic, [("T-new", b'{"assessmentId": "T-new"}')])
    again = make_bridge("bridge-term-2", KAFKA_CONSUMER_GROUP=bridge.env["KAFKA_CONSUMER_GROUP"])
    wait(lambda: SimulationJob.objects.filter(assessment_id="T-new").exists(), 60, "the new event's job")
    assert again.log_path.read_text().count("dead-lettered") == 0
    assert SimulationJob.objects.count() == 21
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def test_outbox_waits_while_kafka_is_down_and_every_event_arrives_after(kafka_topics, make_bridge):
    make_bridge("bridge-outage")
    kafka = ["bash", str(ROOT / "deploy" / "kafka.sh")]
    subprocess.run(kafka + ["stop"], check=True, capture_output=True)
    try:
        ids = []
        for i in range(5):
            job = services.create_job(
                assessment_id=f"O-{i}", trades=factories.trades(), config=factories.config(), enqueue=False
            )
            services.run_job(job_id=job.id, worker_id="test:outage")
            ids.append(str(job.id))
        wait(lambda: EventOutbox.objects.filter(attempts__gt=0).exists(), 60, "a failed delivery to be recorded")
        assert EventOutbox.objects.count() == 10  # waiting, not lost
        # timeouts are Kafka being away, not the events: none is put off behind the others
        assert not EventOutbox.objects.filter(next_attempt_at__isnull=False).exists()
    finally:
        subprocess.run(kafka + ["start"], check=True, capture_output=True)
    wait(lambda: not EventOutbox.objects.exists(), 90, "the outbox to drain")
    started = read_topic(kafka_topics["montecarlo.simulation-started"], 5)
    completed = read_topic(kafka_topics["montecarlo.simulation-completed"], 5)
    assert sorted(json.loads(m.value())["jobId"] for m in started) == sorted(ids)
    assert sorted(json.loads(m.value())["jobId"] for m in completed) == sorted(ids)


def test_a_bridge_started_while_kafka_is_down_waits_and_starts_when_it_returns(kafka_topics, kafka_env, tmp_path):
    """It neither exits nor floods its log: one line when Kafka is found away, librdkafka's
    retries at most once a minute per kind, one line when Kafka answers; then it consumes."""
    from tests.fakes.worker import BridgeProcess

    kafka = ["bash", str(ROOT / "deploy" / "kafka.sh")]
    subprocess.run(kafka + ["stop"], check=True, capture_output=True)
    bridge = BridgeProcess(kafka_env, tmp_path, "bridge-early").start(wait_until_up=False)
    try:
        wait(lambda: b"Kafka is not reachable" in bridge.log_path.read_bytes(), 60, "the bridge to say it waits")
        time.sleep(20)  # an outage of 20 s, as in the black-box run that logged ~700 lines
        assert bridge.proc.poll() is None, bridge.log_path.read_text()[-2000:]
        during = bridge.log_path.read_text()
        assert during.count("Kafka is not reachable") == 1 and "kafka bridge up" not in during
        assert len(during.splitlines()) < 30, during[-3000:]
    finally:
        subprocess.run(kafka + ["start"], check=True, capture_output=True)
    try:
        wait(lambda: b"kafka bridge up" in bridge.log_path.read_bytes(), 120, "the bridge to start")
        assert "Kafka reachable again after" in bridge.log_path.read_text()
        python_produce(kafka_topics["assessment.completed"], [("EARLY-1", b'{"assessmentId": "EARLY-1"}')])
        wait(lambda: SimulationJob.objects.filter(assessment_id="EARLY-1").exists(), 60, "the event's job")
    finally:
        bridge.stop()


# A relay that dies at the worst moment: Kafka has acknowledged its pass, the delete of
# those rows has not committed (os._exit: no cleanup, as a SIGKILL).
DIE_AFTER_ACK = """
import os, threading, django
django.setup()
from workers.kafka import relay
publish = relay.OutboxRelay._publish
def publish_then_die(self, rows):
    publish(self, rows)
    os._exit(9)
relay.OutboxRelay._publish = publish_then_die
relay.OutboxRelay(stop=threading.Event(), batch_size=500).run()
"""
# The control: a relay as it was before the start-up scan, run until the outbox is empty.
RELAY_WITHOUT_SCAN = """
import threading, django
django.setup()
from simulations.models import EventOutbox
from workers.kafka.relay import OutboxRelay
relay = OutboxRelay(stop=threading.Event(), batch_size=500)
while EventOutbox.objects.exists():
    relay.relay_once()
"""


@pytest.mark.parametrize("scan", [True, False], ids=["bridge-with-the-scan", "control-without"])
def test_a_relay_killed_between_kafkas_ack_and_its_delete_sends_nothing_twice(
    kafka_topics, kafka_env, make_bridge, scan
):
    """Duplicates per kill at the worst moment: 0 when the restarted bridge first scans
    what Kafka already holds; the whole pass (here 40) without the scan, which shows the
    test can fail."""
    for i in range(20):
        job = services.create_job(
            assessment_id=f"DUP-{i}", trades=factories.trades(), config=factories.config(), enqueue=False
        )
        services.run_job(job_id=job.id, worker_id="test:dup")
    assert EventOutbox.objects.count() == 40
    python = [sys.executable, "-c"]
    died = subprocess.run(
        [*python, DIE_AFTER_ACK], cwd=ROOT, env=kafka_env, capture_output=True, text=True, timeout=120
    )
    assert died.returncode == 9, died.stderr[-2000:]
    assert EventOutbox.objects.count() == 40  # acknowledged, not deleted
    if scan:
        bridge = make_bridge("bridge-after-kill")
        wait(lambda: not EventOutbox.objects.exists(), 60, "the outbox to drain")
        assert "40 outbox events were already in Kafka" in bridge.log_path.read_text()
    else:
        done = subprocess.run(
            [*python, RELAY_WITHOUT_SCAN], cwd=ROOT, env=kafka_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
    started = read_topic(kafka_topics["montecarlo.simulation-started"], 80, timeout=8)
    completed = read_topic(kafka_topics["montecarlo.simulation-completed"], 80, timeout=8)
    events = [dict(m.headers())["event-id"] for m in started + completed]
    assert len(set(events)) == 40
    assert len(events) - len(set(events)) == (0 if scan else 40)


# A bridge that dies right after Kafka acknowledged a DLQ copy, before the offset of
# the bad message is committed; NO_SCAN runs it (and its restart) without the start-up
# read of the DLQ's latest copies: the control.
BRIDGE_DYING_AFTER_A_DLQ_COPY = """
import os, sys, django
django.setup()
from django.core.management import call_command
from workers.kafka.bridge import AssessmentCompletedBridge as Bridge
if os.environ.get("NO_SCAN"):
    Bridge._recent_dlq_copies = lambda self: set()
if sys.argv[1] == "die":
    copy = Bridge._dead_letter
    def copy_then_die(self, msg, reason):
        copy(self, msg, reason)
        os._exit(9)
    Bridge._dead_letter = copy_then_die
call_command("kafka_bridge", "--no-relay")
"""


@pytest.mark.parametrize("scan", [True, False], ids=["with-the-scan", "control-without"])
def test_a_bridge_killed_after_a_dlq_copy_does_not_copy_it_again(kafka_topics, kafka_env, tmp_path, scan):
    """One DLQ copy per bad message even when the bridge dies between the copy's
    acknowledgement and the offset's commit; without the scan the copy repeats."""
    python_produce(kafka_topics["assessment.completed"], [(f"BAD-{i}", b"{not json") for i in range(3)])
    env = dict(kafka_env, **({} if scan else {"NO_SCAN": "1"}))
    run = [sys.executable, "-c", BRIDGE_DYING_AFTER_A_DLQ_COPY]
    died = subprocess.run([*run, "die"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr[-2000:]
    assert len(read_topic(kafka_topics["assessment.completed.dlq"], 1)) == 1
    with open(tmp_path / "again.log", "ab") as log:
        again = subprocess.Popen([*run, "again"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        copies = read_topic(kafka_topics["assessment.completed.dlq"], 5, timeout=20)
    finally:
        again.terminate()
        again.wait(40)
    origins = [tuple(dict(m.headers())[f"dlq.original.{h}"] for h in ("partition", "offset")) for m in copies]
    assert len(set(origins)) == 3
    assert len(origins) == (3 if scan else 4), origins
    if scan:
        assert "is in the DLQ already" in (tmp_path / "again.log").read_text()


def test_a_second_bridge_joining_rebalances_without_loss_or_duplicates_and_lag_is_exported(kafka_topics, make_bridge):
    topic = kafka_topics["assessment.completed"]
    port = free_port()
    make_bridge("bridge-a", BRIDGE_METRICS_PORT=str(port), KAFKA_BATCH_SIZE="20")
    python_produce(topic, [(f"RB-{i}", json.dumps({"assessmentId": f"RB-{i}"}).encode()) for i in range(600)])
    wait(lambda: SimulationJob.objects.count() >= 50, 60, "bridge a to be busy")
    make_bridge("bridge-b", KAFKA_BATCH_SIZE="20")  # same group: partitions are revoked and reassigned
    wait(lambda: SimulationJob.objects.count() >= 600, 120, "all 600 jobs")
    time.sleep(2)
    assert SimulationJob.objects.count() == 600
    assert SimulationJob.objects.values("assessment_id").distinct().count() == 600
    exposed = wait(
        lambda: "montecarlo_kafka_consumer_lag{" in (text := requests_get(f"http://127.0.0.1:{port}/metrics")) and text,
        30,
        "the lag metric",
    )
    lags = [line for line in exposed.splitlines() if line.startswith("montecarlo_kafka_consumer_lag{")]
    assert lags and all(topic in line for line in lags)
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_a_killed_bridge_restarted_consumes_again_at_once_only_as_a_static_member(kafka_topics, make_bridge, static):
    """A bridge SIGKILLed (no LeaveGroup) and started again in its place. A dynamic member
    comes back as a new member, and the dead one holds every partition until its session
    times out; a static member (KAFKA_GROUP_INSTANCE_ID) takes its own partitions back at
    once. (The session is 20 s here, so start-up time cannot blur the two.)"""
    topic = kafka_topics["assessment.completed"]
    env = {"KAFKA_SESSION_TIMEOUT_MS": "20000"}
    if static:
        env["KAFKA_GROUP_INSTANCE_ID"] = "bridge-0"
    name = f"bridge-{'static' if static else 'dynamic'}"
    first = make_bridge(name, **env)
    python_produce(topic, [("M-0", b'{"assessmentId": "M-0"}')])
    wait(lambda: SimulationJob.objects.filter(assessment_id="M-0").exists(), 60, "the first event's job")
    first.kill()
    killed_at = time.monotonic()
    make_bridge(f"{name}-again", **env)
    python_produce(topic, [(f"M-{i}", json.dumps({"assessmentId": f"M-{i}"}).encode()) for i in range(1, 13)])
    wait(lambda: SimulationJob.objects.count() >= 13, 90, "every event's job")
    took = time.monotonic() - killed_at
    logging.getLogger(__name__).warning("%s member: consuming %.1f s after the kill", name, took)
    if static:
        assert took < 15, took  # start-up alone
    else:
        assert took >= 15, took  # the dead member's session (20 s) first
    assert SimulationJob.objects.count() == 13
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def requests_get(url: str) -> str:
    import requests

    try:
        return requests.get(url, timeout=5).text
    except requests.RequestException:
        return ""


def too_large_event(job: SimulationJob) -> EventOutbox:
    """An outbox event over the producer's message.max.bytes (1 MB): librdkafka refuses it at produce()."""
    return EventOutbox.objects.create(
        job=job,
        topic="montecarlo.simulation-completed",
        key=job.assessment_id,
        payload={"padding": os.urandom(700_000).hex()},
    )


def test_the_relay_puts_off_what_kafka_refused_and_sends_the_rest(kafka_topics):
    import datetime as dt
    import threading

    from django.utils import timezone

    from workers.kafka.relay import OutboxRelay

    first = services.create_job(
        assessment_id="R-1", trades=factories.trades(), config=factories.config(), enqueue=False
    )
    services.run_job(job_id=first.id, worker_id="test:relay")
    poison = too_large_event(first)
    second = services.create_job(
        assessment_id="R-2", trades=factories.trades(), config=factories.config(), enqueue=False
    )
    services.run_job(job_id=second.id, worker_id="test:relay")
    good = set(EventOutbox.objects.exclude(pk=poison.pk).values_list("pk", flat=True))
    assert len(good) == 4

    # put off for a minute after the first refusal, so that reading the topics below cannot outlast it
    relay = OutboxRelay(stop=threading.Event(), flush_timeout=30, first_refused_backoff=60)
    tried = timezone.now()
    assert relay.relay_once() == (5, 4, 1)  # due, delivered, put off: the refused one holds back none
    left = EventOutbox.objects.get()
    assert left.pk == poison.pk and left.attempts == 1 and "too large" in left.last_error.lower()
    assert tried + dt.timedelta(seconds=60) <= left.next_attempt_at <= timezone.now() + dt.timedelta(seconds=60)
    # put off: the next passes leave it alone (no retry and no error line every pass)
    assert relay.relay_once() == (0, 0, 0)
    assert EventOutbox.objects.get().attempts == 1
    sent = read_topic(kafka_topics["montecarlo.simulation-started"], 2) + read_topic(
        kafka_topics["montecarlo.simulation-completed"], 2
    )
    assert {int(dict(m.headers())["event-id"]) for m in sent} == good

    # once due it is tried again, and put off twice as long
    EventOutbox.objects.update(next_attempt_at=timezone.now())
    tried = timezone.now()
    assert relay.relay_once() == (1, 0, 1)
    again = EventOutbox.objects.get()
    assert again.attempts == 2 and again.next_attempt_at >= tried + dt.timedelta(seconds=120)


def test_a_batch_of_refused_events_does_not_block_the_queue(kafka_topics, settings):
    """More refused events than a relay batch, at the head of the queue: some refused by
    librdkafka at produce(), some by the broker (a topic whose max.message.bytes is small)."""
    import threading

    from confluent_kafka.admin import AdminClient, NewTopic

    from simulations import metrics
    from simulations.events import physical_topic
    from workers.kafka.relay import OutboxRelay

    small = "montecarlo.small-messages"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(physical_topic(small), 1, 1, config={"max.message.bytes": "2000"})])[
        physical_topic(small)
    ].result(30)
    job = services.create_job(assessment_id="H-1", trades=factories.trades(), config=factories.config(), enqueue=False)
    too_large = [too_large_event(job) for _ in range(2)]
    # well under the producer's limit, far over the topic's, even compressed
    over_topic_limit = [
        EventOutbox.objects.create(job=job, topic=small, key="H-1", payload={"padding": os.urandom(20_000).hex()})
        for _ in range(2)
    ]
    services.run_job(job_id=job.id, worker_id="test:relay")
    good = set(
        EventOutbox.objects.exclude(pk__in=[row.pk for row in too_large + over_topic_limit]).values_list(
            "pk", flat=True
        )
    )
    assert len(good) == 2  # the job's started and completed events

    def refused_count(topic: str) -> float:
        return metrics.OUTBOX_REFUSED.labels(topic=topic)._value.get()

    counted = refused_count(small), refused_count("montecarlo.simulation-completed")
    relay = OutboxRelay(stop=threading.Event(), batch_size=4, flush_timeout=30, first_refused_backoff=60)
    assert relay.relay_once() == (4, 0, 4)  # four refused: put off, and no backoff for the relay
    assert (refused_count(small), refused_count("montecarlo.simulation-completed")) == (counted[0] + 2, counted[1] + 2)
    assert relay.relay_once() == (2, 2, 0)  # so the next pass reaches the events behind them
    refused = EventOutbox.objects.order_by("id")
    assert [row.pk for row in refused] == [row.pk for row in too_large + over_topic_limit]
    assert all(row.attempts == 1 and row.next_attempt_at is not None for row in refused)
    assert "MSG_SIZE_TOO_LARGE" in refused[2].last_error and "MSG_SIZE_TOO_LARGE" in refused[3].last_error
    sent = read_topic(kafka_topics["montecarlo.simulation-started"], 1) + read_topic(
        kafka_topics["montecarlo.simulation-completed"], 1
    )
    assert {int(dict(m.headers())["event-id"]) for m in sent} == good


def test_the_relay_thread_goes_straight_on_after_a_pass_whose_events_were_all_put_off(kafka_topics):
    import threading

    from workers.kafka.relay import OutboxRelay

    job = services.create_job(assessment_id="S-1", trades=factories.trades(), config=factories.config(), enqueue=False)
    for _ in range(2):
        too_large_event(job)
    services.run_job(job_id=job.id, worker_id="test:relay")
    assert EventOutbox.objects.count() == 4

    stop = threading.Event()
    # an idle wait far longer than the test may take: only a pass that found nothing due waits
    relay = OutboxRelay(stop=stop, batch_size=2, idle_wait=120, flush_timeout=30, first_refused_backoff=600)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        wait(lambda: EventOutbox.objects.count() == 2, 30, "the two events behind the refused ones")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert all(row.attempts == 1 and row.next_attempt_at for row in EventOutbox.objects.all())
    sent = read_topic(kafka_topics["montecarlo.simulation-started"], 1) + read_topic(
        kafka_topics["montecarlo.simulation-completed"], 1
    )
    assert [json.loads(m.value())["jobId"] for m in sent] == [str(job.id)] * 2
