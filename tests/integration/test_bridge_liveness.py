"""The bridge's liveness probe, against a real bridge process on the real Kafka: alive
while both loops go round, not alive once the process hangs (SIGSTOP), alive again when
it goes on, and no stale files after a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def probe(directory: Path, max_age: float, *loops: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, BRIDGE_LIVENESS_DIR=str(directory), BRIDGE_LIVENESS_MAX_AGE=str(max_age))
    return subprocess.run(
        [sys.executable, "-m", "workers.kafka.liveness", *loops], cwd=ROOT, env=env, capture_output=True, text=True
    )


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_the_probe_follows_the_bridges_loops(make_bridge, tmp_path):
    directory = tmp_path / "alive"
    assert probe(directory, 5).returncode == 1  # nothing running: not alive
    bridge = make_bridge(BRIDGE_LIVENESS_DIR=str(directory), KAFKA_POLL_TIMEOUT="0.5", OUTBOX_IDLE_WAIT="0.5")
    assert wait_for(lambda: probe(directory, 5).returncode == 0, 30), probe(directory, 5).stderr
    os.kill(bridge.proc.pid, signal.SIGSTOP)  # a hung process: no loop goes round
    try:
        both = ("consumer: last went round", "relay: last went round")
        assert wait_for(lambda: all(p in probe(directory, 3).stderr for p in both), 15), probe(directory, 3).stderr
    finally:
        os.kill(bridge.proc.pid, signal.SIGCONT)
    assert wait_for(lambda: probe(directory, 3).returncode == 0, 15), probe(directory, 3).stderr
    assert bridge.stop() == 0
    assert not (directory / "consumer").exists() and not (directory / "relay").exists()
