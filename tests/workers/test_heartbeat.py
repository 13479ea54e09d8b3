"""Heartbeats against the real Redis: a single node and the 6-node Redis Cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from simulations.keys_redis import keys_redis, reset_keys_redis
from workers import heartbeat


@pytest.fixture
def backend(keys_backend):
    r = keys_redis()
    r.delete(heartbeat.INDEX_KEY)
    yield keys_backend
    r.delete(heartbeat.INDEX_KEY)


def test_a_heartbeat_carries_the_documented_fields_and_a_ttl(backend):
    beat = heartbeat.Heartbeat("w1@test", interval=0.2, ttl=5).start()
    try:
        key = heartbeat.heartbeat_key(beat.state.worker_id)
        data = json.loads(keys_redis().get(key))
        assert set(data) == {
            "worker_id",
            "worker_name",
            "timestamp",
            "status",
            "tasks_processed",
            "tasks_failed",
            "uptime_seconds",
            "current_task_id",
            "heartbeat_interval",
            "heartbeat_ttl",
        }
        assert data["worker_id"] == f"{socket.gethostname()}:{os.getpid()}" and data["status"] == "idle"
        assert 0 < keys_redis().ttl(key) <= 5
        beat.task_started("task-1")
        time.sleep(0.5)
        data = json.loads(keys_redis().get(key))
        assert (data["status"], data["current_task_id"]) == ("processing", "task-1")
        beat.task_started("task-2")  # a thread pool runs several at once
        beat.task_finished("task-1", failed=True)
        time.sleep(0.5)
        data = json.loads(keys_redis().get(key))
        assert (data["status"], data["current_task_id"]) == ("processing", "task-2")
        beat.task_finished("task-2", failed=False)
        time.sleep(0.5)
        data = json.loads(keys_redis().get(key))
        assert (data["status"], data["tasks_processed"], data["tasks_failed"]) == ("idle", 2, 1)
        assert beat.state.worker_id in [w["worker_id"] for w in heartbeat.live_workers()]
    finally:
        beat.stop()
    assert keys_redis().get(key) is None
    assert beat.state.worker_id not in [w["worker_id"] for w in heartbeat.live_workers()]


def test_a_burst_of_changes_is_written_once_a_gap_and_ends_in_the_last_state(backend):
    beat = heartbeat.Heartbeat("w-burst@test", interval=30, ttl=60, min_gap=0.3)
    writes = []
    write = beat.beat
    beat.beat = lambda: writes.append(time.monotonic()) or write()
    beat.start()
    try:
        key = heartbeat.heartbeat_key(beat.state.worker_id)
        started = time.monotonic()
        for i in range(300):  # small jobs: hundreds of starts and finishes a second
            beat.task_started(f"t{i}")
            beat.task_finished(f"t{i}", failed=i % 3 == 0)
            time.sleep(0.003)
        burst = time.monotonic() - started
        time.sleep(0.6)
        data = json.loads(keys_redis().get(key))
        assert (data["status"], data["tasks_processed"], data["tasks_failed"]) == ("idle", 300, 100)
        assert 2 <= len(writes) <= 2 + burst / 0.3 + 1  # the first, then at most one a gap
        assert all(b - a >= 0.29 for a, b in zip(writes, writes[1:]))
    finally:
        beat.stop()


def test_the_thread_keeps_refreshing(backend):
    beat = heartbeat.Heartbeat("w2@test", interval=0.2, ttl=1).start()
    try:
        key = heartbeat.heartbeat_key(beat.state.worker_id)
        first = json.loads(keys_redis().get(key))["timestamp"]
        time.sleep(1.5)  # longer than the TTL: only refreshing keeps it
        assert json.loads(keys_redis().get(key))["timestamp"] > first
    finally:
        beat.stop()


def test_an_expired_key_drops_out_of_the_listing(backend):
    r = keys_redis()
    r.set(heartbeat.heartbeat_key("ghost:1"), json.dumps({"worker_id": "ghost:1"}), px=200)
    r.zadd(heartbeat.INDEX_KEY, {"ghost:1": time.time()})
    assert "ghost:1" in [w["worker_id"] for w in heartbeat.live_workers()]
    time.sleep(0.4)
    assert "ghost:1" not in [w["worker_id"] for w in heartbeat.live_workers()]
    assert r.zscore(heartbeat.INDEX_KEY, "ghost:1") is None


def test_liveness_on_this_host_reads_the_process_table(backend):
    me = f"{socket.gethostname()}:{os.getpid()}"
    assert heartbeat.is_alive(me)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not heartbeat.is_alive(f"{socket.gethostname()}:{gone.pid}")


def test_liveness_elsewhere_reads_the_key(backend):
    r = keys_redis()
    assert not heartbeat.is_alive("other-host:42")
    r.set(heartbeat.heartbeat_key("other-host:42"), "{}", ex=5)
    assert heartbeat.is_alive("other-host:42")
    r.delete(heartbeat.heartbeat_key("other-host:42"))
    assert not heartbeat.is_alive("")


def test_an_unreachable_store_never_kills_the_worker_nor_requeues_jobs(settings):
    settings.KEYS_REDIS_URL = "redis://127.0.0.1:1/0"
    settings.KEYS_REDIS_CLUSTER = False
    reset_keys_redis()
    try:
        beat = heartbeat.Heartbeat("w3@test", interval=0.1, ttl=1)
        assert beat.beat() is False  # logged, not raised
        assert heartbeat.is_alive("other-host:7")  # unknown counts as alive
    finally:
        reset_keys_redis()


def test_a_worker_starts_from_any_listed_cluster_node_while_the_first_is_down(settings):
    """KEYS_REDIS_URL may list several cluster nodes: the first answering one is enough,
    so a worker started while the node it names first is down still beats (the cluster
    has failed that node over)."""
    from tests.net import free_port

    settings.KEYS_REDIS_CLUSTER = True
    settings.KEYS_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0, {os.environ['REDIS_CLUSTER_URL']}"
    reset_keys_redis()
    try:
        beat = heartbeat.Heartbeat("listed@test", interval=60, ttl=30)
        assert beat.beat()
        assert any(hb["worker_name"] == "listed@test" for hb in heartbeat.live_workers())
        assert len(keys_redis().get_nodes()) == 6  # the rest found from the one that answered
        keys_redis().delete(heartbeat.heartbeat_key(beat.state.worker_id))
    finally:
        reset_keys_redis()
