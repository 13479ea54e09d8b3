"""Shared fixtures. Integration fixtures start real processes against the real
PostgreSQL and Redis that ``deploy/test.sh`` started; nothing here fakes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.fakes.core_service import FakeCoreService
from tests.fakes.worker import BeatProcess, BridgeProcess, WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".var" / "test-logs"


@pytest.fixture(scope="session", autouse=True)
def clean_broker() -> None:
    """The suite owns its broker database: start from an empty queue."""
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(autouse=True)
def forget_wake_up() -> None:
    """Each test's first API job sends its own wake-up: none is left from the test before."""
    from simulations.keys_redis import keys_redis
    from simulations.services.dispatch import WAKE_KEY

    keys_redis().delete(WAKE_KEY)


@pytest.fixture
def core_service(settings) -> Iterator[FakeCoreService]:
    fake = FakeCoreService().start()
    settings.CORE_SERVICE_URL = fake.url
    settings.CORE_SERVICE_BACKOFF = 0.01
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def session_core_service() -> Iterator[FakeCoreService]:
    """One Core Service for the whole session, so worker processes can be pointed at it."""
    fake = FakeCoreService().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker) -> str:
    """DATABASE_URL of the test database pytest-django created."""
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture(scope="session")
def worker_env(test_database_url, session_core_service) -> dict[str, str]:
    from django.conf import settings

    return dict(
        os.environ,
        DATABASE_URL=test_database_url,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CORE_SERVICE_URL=session_core_service.url,
        CORE_SERVICE_BACKOFF="0.01",
        SIMULATION_PROGRESS_INTERVAL="0.2",
        WORKER_HEARTBEAT_INTERVAL="0.5",
        WORKER_HEARTBEAT_TTL="3",
        PYTHONPATH=str(ROOT),
    )


@pytest.fixture(scope="module")
def celery_worker(worker_env) -> Iterator[WorkerProcess]:
    """One real ``celery worker`` process for a test module (gone before the next
    module, whose tests may count workers or jobs)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess("session", worker_env, LOG_DIR, concurrency=1).start()
    yield worker
    worker.stop()


@pytest.fixture
def make_worker(worker_env) -> Iterator:
    """Start extra workers inside one test; all are stopped (or killed) at its end."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started: list[WorkerProcess] = []

    def make(name: str, concurrency: int = 1, queues: str = "simulations,maintenance", **env: str) -> WorkerProcess:
        worker = WorkerProcess(name, dict(worker_env, **env), LOG_DIR, concurrency=concurrency, queues=queues).start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


@pytest.fixture
def make_beat(worker_env) -> Iterator:
    started: list[BeatProcess] = []

    def make(**env: str) -> BeatProcess:
        beat = BeatProcess(dict(worker_env, **env), LOG_DIR).start()
        started.append(beat)
        return beat

    yield make
    for beat in started:
        beat.stop()


@pytest.fixture
def kafka_topics(settings) -> dict[str, str]:
    """Fresh topics for one test (a unique prefix), created on the real broker."""
    import uuid

    from simulations import events
    from workers.kafka.topics import ensure_topics

    settings.KAFKA_BOOTSTRAP_SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    settings.KAFKA_TOPIC_PREFIX = f"t{uuid.uuid4().hex[:10]}."
    ensure_topics()
    return {name: events.physical_topic(name) for name in events.ALL_TOPICS}


@pytest.fixture
def kafka_env(worker_env, settings, kafka_topics) -> dict[str, str]:
    """Environment for worker and bridge processes that use this test's topics."""
    import uuid

    return dict(
        worker_env,
        KAFKA_BOOTSTRAP_SERVERS=settings.KAFKA_BOOTSTRAP_SERVERS,
        KAFKA_TOPIC_PREFIX=settings.KAFKA_TOPIC_PREFIX,
        KAFKA_CONSUMER_GROUP=f"g-{uuid.uuid4().hex[:8]}",
        BRIDGE_METRICS_PORT="0",
        KAFKA_MESSAGE_TIMEOUT_MS="5000",
        OUTBOX_MAX_BACKOFF="2",
        KAFKA_POLL_TIMEOUT="0.2",
    )


@pytest.fixture
def make_bridge(kafka_env) -> Iterator:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started: list[BridgeProcess] = []

    def make(name: str = "bridge", **env: str) -> BridgeProcess:
        bridge = BridgeProcess(dict(kafka_env, **env), LOG_DIR, name).start()
        started.append(bridge)
        return bridge

    yield make
    for bridge in started:
        try:
            bridge.stop()
        except Exception:
            bridge.kill()


@pytest.fixture
def make_web(worker_env, tmp_path) -> Iterator:
    """Start real gunicorn web processes (deploy/gunicorn.conf.py) on the test database;
    ``make(**env)`` returns (base URL, metrics port, log path); ``make.processes`` holds
    the gunicorn masters started. Stopped at the test's end."""
    import subprocess
    import sys

    from tests.deploy.test_web_server import wait_until_up
    from tests.net import free_port

    started: list[subprocess.Popen[bytes]] = []

    def make(**env: str) -> tuple[str, int, Path]:
        port, metrics = free_port(), free_port()
        log = tmp_path / f"web-{len(started)}.log"
        (tmp_path / f"metrics-{len(started)}").mkdir()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "montecarlo.wsgi"],
                cwd=ROOT,
                env=dict(
                    worker_env,
                    WEB_BIND=f"127.0.0.1:{port}",
                    WEB_METRICS_PORT=str(metrics),
                    WEB_CONCURRENCY="1",
                    PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{len(started)}"),
                    **env,
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_until_up(f"http://127.0.0.1:{port}/health", proc, log)
        return f"http://127.0.0.1:{port}", metrics, log

    make.processes = started  # type: ignore[attr-defined]
    yield make
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
