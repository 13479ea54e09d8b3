"""End to end: jobs created over HTTP and from Kafka, completed by real worker
processes on real Redis and PostgreSQL; jobs/s, latency percentiles, where time goes.

    deploy/bench.sh end_to_end [--jobs 2000] [--paths 1000]

Rows: jobs POSTed one per request (16 clients), POSTed 100 per request to
``/simulations/batch`` (4 clients), and produced to Kafka. Processes started here:
gunicorn (the web app), ``manage.py kafka_bridge``, and 1 or 2 Celery worker processes
(thread pool, 8 threads, kernels on the calling thread, batch writer). A small local
HTTP server plays the Core Service for the Kafka path.
Every job must complete: a lost job fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")
django.setup()

import redis  # noqa: E402
import requests  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.report import Report  # noqa: E402
from simulations.models import SimulationJob  # noqa: E402
from tests.fakes.core_service import FakeCoreService  # noqa: E402
from tests.fakes.worker import BridgeProcess, WorkerProcess  # noqa: E402
from workers.kafka.topics import ensure_topics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEB_PORT = 58_000
TRADES = [{"pnl": round(40 * ((i * 7919) % 13 - 6), 2)} for i in range(50)]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


class Web:
    def __init__(self, env: dict[str, str], log_dir: Path):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "montecarlo.wsgi",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{WEB_PORT}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(log_dir / "gunicorn.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{WEB_PORT}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not come up")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def _session(clients: int) -> requests.Session:
    """One kept connection per client thread (requests' default pool keeps 10: with 16
    clients the rest reconnected for every request, load on the server under test)."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=clients))
    session.headers["Authorization"] = f"Api-Key {api_key()}"
    return session


def api_key() -> str:
    """A key of the benchmark's own client (made once per run)."""
    global _KEY
    if _KEY is None:
        from simulations.services import access

        client = access.create_client(name="benchmark", scopes=["submit", "read"])
        _KEY = access.issue_key(client=client)[1]
    return _KEY


_KEY: str | None = None


def create_over_http(prefix: str, n: int, config: dict, clients: int = 16) -> list[float]:
    """POST n jobs from ``clients`` threads; returns each request's latency."""
    session = _session(clients)

    def post(i: int) -> float:
        started = time.perf_counter()
        r = session.post(
            f"http://127.0.0.1:{WEB_PORT}/simulations",
            json={"assessmentId": f"{prefix}{i}", "trades": TRADES, "config": config},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        return time.perf_counter() - started

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(post, range(n)))


def create_over_http_in_batches(
    prefix: str, n: int, config: dict, per_request: int = 100, clients: int = 4
) -> list[float]:
    """POST /simulations/batch with ``per_request`` jobs each; returns each request's latency."""
    session = _session(clients)

    def post(lo: int) -> float:
        started = time.perf_counter()
        jobs = [
            {"assessmentId": f"{prefix}{i}", "trades": TRADES, "config": config}
            for i in range(lo, min(n, lo + per_request))
        ]
        r = session.post(f"http://127.0.0.1:{WEB_PORT}/simulations/batch", json={"jobs": jobs}, timeout=60)
        assert r.status_code == 202, r.text
        return time.perf_counter() - started

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(post, range(0, n, per_request)))


def create_over_kafka(prefix: str, n: int, config: dict, topic: str) -> None:
    producer = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "linger.ms": 5})
    for i in range(n):
        producer.produce(
            topic,
            key=f"{prefix}{i}".encode(),
            value=json.dumps({"assessmentId": f"{prefix}{i}", "config": config}).encode(),
        )
        producer.poll(0)
    assert producer.flush(30) == 0


def wait_done(prefix: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection.close()
        done = SimulationJob.objects.filter(assessment_id__startswith=prefix, status="completed").count()
        if done >= n:
            return
        time.sleep(0.2)
    counts = dict(
        SimulationJob.objects.filter(assessment_id__startswith=prefix)
        .values_list("status")
        .annotate(n=django.db.models.Count("id"))
    )
    raise AssertionError(f"{prefix}: not all {n} jobs completed in {timeout}s: {counts}")


OUT = Report("end_to_end", "End to end: jobs per second and latency through the real processes")


def report(label: str, prefix: str, n: int, api_latency: list[float]) -> dict[str, float]:
    jobs = [
        (created, started, completed, (result or {}).get("elapsed_seconds", 0.0), status)
        for created, started, completed, result, status in SimulationJob.objects.filter(
            assessment_id__startswith=prefix
        ).values_list("created_at", "started_at", "completed_at", "result", "status")
    ]
    assert len(jobs) == n and {j[4] for j in jobs} == {"completed"}, "a job was lost or failed"
    first = min(j[0] for j in jobs)
    last = max(j[2] for j in jobs)
    latency = [(j[2] - j[0]).total_seconds() * 1000 for j in jobs]
    queue = [(j[1] - j[0]).total_seconds() * 1000 for j in jobs]
    kernel = [float(j[3]) * 1000 for j in jobs]
    write = [max(0.0, (j[2] - j[1]).total_seconds() * 1000 - float(j[3]) * 1000) for j in jobs]
    row = {
        "jobs/s": n / (last - first).total_seconds(),
        "p50": pct(latency, 50),
        "p95": pct(latency, 95),
        "p99": pct(latency, 99),
        "api p50": pct([x * 1000 for x in api_latency], 50) if api_latency else float("nan"),
        "queue p50": pct(queue, 50),
        "engine p50": pct(kernel, 50),
        "load+write p50": pct(write, 50),
    }
    OUT.line(
        f"{label:<30} | {n:>6,} | {row['jobs/s']:>7.0f} | {row['p50']:>8.0f} | {row['p95']:>8.0f} | "
        f"{row['p99']:>8.0f} | {row['api p50']:>8.1f} | {row['queue p50']:>9.0f} | {row['engine p50']:>10.1f} | "
        f"{row['load+write p50']:>14.1f}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument(
        "--task-events",
        action="store_true",
        help="one worker, each path with Celery's task events off and then on (what Flower and celery-exporter need)",
    )
    args = parser.parse_args()
    if args.task_events:  # its own table: the baseline's stays what the docs quote
        OUT.name, OUT.title = "end_to_end_task_events", "End to end with Celery's task events off and on"
    config = {
        "paths": args.paths,
        "horizon": 50,
        "seed": 1,
        "fanPoints": 20,
        "histogramBins": 20,
        "rules": {"profitTarget": 500, "maxDrawdown": 400},
    }
    log_dir = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    topic_prefix = f"bench{uuid.uuid4().hex[:8]}."
    os.environ["KAFKA_TOPIC_PREFIX"] = topic_prefix
    from django.conf import settings

    settings.KAFKA_TOPIC_PREFIX = topic_prefix
    settings.KAFKA_BOOTSTRAP_SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    ensure_topics()
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    core = FakeCoreService().start()
    env = dict(
        os.environ,
        CORE_SERVICE_URL=core.url,
        ENGINE_PARALLEL="false",
        WORKER_POOL="threads",
        BRIDGE_METRICS_PORT="0",
        API_RATE_LIMIT="10000000/minute",  # the benchmark is one client sending as fast as it can
        KAFKA_CONSUMER_GROUP=f"bench-{uuid.uuid4().hex[:6]}",
        PYTHONPATH=str(ROOT),
    )
    print(f"logs in {log_dir}")
    OUT.line(f"{args.jobs} jobs per row, {args.paths} paths x 50 trades each; latency = created -> completed (ms)")
    OUT.line(
        f"{'workers / path':<30} | {'jobs':>6} | {'jobs/s':>7} | {'p50 ms':>8} | {'p95 ms':>8} | {'p99 ms':>8} | "
        f"{'api p50':>8} | {'queue p50':>9} | {'engine p50':>10} | {'load+write p50':>14}"
    )
    OUT.line("-" * 136)
    # (worker processes, task events): the baseline rows, or events off and on in one run
    setups = [(1, False), (1, True)] if args.task_events else [(1, False), (2, False)]
    try:
        for processes, events in setups:
            # publishers (web, bridge) send task-sent events too: every process in the same mode
            mode = dict(env, CELERY_TASK_EVENTS=str(events).lower())
            label = f"{processes} worker(s){', events' if events else ''}"
            web = Web(mode, log_dir)
            bridge = BridgeProcess(mode, log_dir).start()
            workers = [
                WorkerProcess(
                    f"bench{processes}{'e' if events else ''}-{k}", mode, log_dir, concurrency=args.threads
                ).start()
                for k in range(processes)
            ]
            try:
                run = uuid.uuid4().hex[:6]
                prefix = f"bapi-{run}-"
                api = create_over_http(prefix, args.jobs, config)
                wait_done(prefix, args.jobs, 600)
                report(f"{label}, API", prefix, args.jobs, api)
                prefix = f"bbatch-{run}-"
                api = create_over_http_in_batches(prefix, args.jobs, config)
                wait_done(prefix, args.jobs, 600)
                report(f"{label}, API batch", prefix, args.jobs, api)
                prefix = f"bkafka-{run}-"
                for i in range(args.jobs):
                    core.assessment_trades[f"{prefix}{i}"] = TRADES
                create_over_kafka(prefix, args.jobs, config, f"{topic_prefix}assessment.completed")
                wait_done(prefix, args.jobs, 600)
                report(f"{label}, Kafka", prefix, args.jobs, [])
            finally:
                for w in workers:
                    w.stop()
                bridge.stop()
                web.stop()
        OUT.save()
    finally:
        core.stop()
        SimulationJob.objects.filter(assessment_id__regex=r"^b(api|batch|kafka)-").delete()


if __name__ == "__main__":
    main()
