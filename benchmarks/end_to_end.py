"""End to end: jobs created over HTTP, from Kafka and by the daily run, completed by real
worker processes on real Redis and PostgreSQL; jobs/s, latency, and the CPU each job
costs in every process.

    deploy/bench.sh end_to_end [--jobs 1000] [--paths 1000] [--accounts 100000]
                               [--setups prefork:1x2,threads:1x8,threads:2x8] [--rows bapi,bbatch]

Rows, for each worker setup (pool: processes x concurrency; the first, prefork with 2
children, is what the Helm chart deploys): jobs POSTed one per request (16 clients),
pushed with a message per job (``SIMULATION_API_PULL=false``,
``SIMULATION_DISPATCH_WINDOW_MS=0``: the baseline), pushed and coalesced (the
dispatcher's window), pulled by wake-ups sent at once (window 0) and a window after
the commit (the default), and pulled with gunicorn as 3 processes of 1 thread instead
of 2 of 4; one per request at a steady 100 jobs/s (the latency rows), woken at once and
as deployed, and with the other gunicorn; 100 per request to ``/simulations/batch`` (4
clients), pushed with 16 jobs a message (the baseline for it) and with
``SIMULATION_TASK_BATCH``, and pulled; produced to Kafka. Then, with the first setup,
the daily run of ``--accounts`` funded accounts, started by its task.

Processes started here: gunicorn with the service's own settings
(``deploy/gunicorn.conf.py``), ``manage.py kafka_bridge``, the worker processes (as deployed:
``ENGINE_PARALLEL`` on for prefork, off for threads) and the Core Service
stand-in (``tests.fakes.core_service``, its own process so its CPU is its own).

CPU per job is read from ``/proc`` (psutil) for each process tree: its live processes'
user + system time and what their reaped children used (a PostgreSQL backend that
closed still counts). "overhead" is web + worker + bridge + PostgreSQL + Redis less the
engine's own CPU per job, measured here alone on the same config; Kafka's broker, the
stand-in and this client are shown apart. Every job must complete exactly once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")
django.setup()

import psutil  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402
from celery import current_app  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from benchmarks.report import Report  # noqa: E402
from simulations import task_names  # noqa: E402
from simulations.engine import SimulationConfig, TradeHistory, simulate  # noqa: E402
from simulations.models import JobStatus, SimulationJob  # noqa: E402
from simulations.services.jobs import engine_limits  # noqa: E402
from simulations.wire import snake_keys  # noqa: E402
from tests.fakes.worker import BridgeProcess, WorkerProcess  # noqa: E402
from workers.kafka.topics import ensure_topics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEB_PORT = 58_000
CORE_PORT = 58_001
TRADES = [{"pnl": round(40 * ((i * 7919) % 13 - 6), 2)} for i in range(50)]
# the processes whose CPU is the pipeline's; the others are shown apart
PIPELINE = ("web", "worker", "bridge", "postgres", "redis")
APART = ("kafka", "core", "client")


def setups_of(text: str) -> list[tuple[str, int, int]]:
    """``prefork:1x2,threads:1x8`` -> [("prefork", 1, 2), ("threads", 1, 8)]."""
    setups = []
    for item in text.split(","):
        pool, _, size = item.partition(":")
        processes, _, concurrency = size.partition("x")
        if pool not in ("prefork", "threads") or not processes.isdigit() or not concurrency.isdigit():
            raise argparse.ArgumentTypeError(f"a setup is prefork|threads:<processes>x<concurrency>, not {item!r}")
        setups.append((pool, int(processes), int(concurrency)))
    return setups


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


class Server:
    """A process of the benchmark's own, in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, ready: Callable[[], bool]):
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=open(log_dir / f"{name}.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {log_dir / name}.log")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not come up")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def web(env: dict[str, str], log_dir: Path) -> Server:
    cmd = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "montecarlo.wsgi"]
    env = dict(env, WEB_BIND=f"127.0.0.1:{WEB_PORT}", WEB_METRICS_PORT="0")
    return Server("gunicorn", cmd, env, log_dir, lambda: requests.get(f"{base()}/health", timeout=1).ok)


def core_service(accounts: int, prefix: str, log_dir: Path) -> Server:
    history = log_dir / "trades.json"
    history.write_text(json.dumps(TRADES))
    cmd = [sys.executable, "-m", "tests.fakes.core_service", "--port", str(CORE_PORT), "--accounts", str(accounts)]
    cmd += ["--account-prefix", prefix, "--page-size", "1000", "--trades", str(history)]
    url = f"http://127.0.0.1:{CORE_PORT}/api/assessments/x/trades"
    return Server("core", cmd, dict(os.environ, PYTHONPATH=str(ROOT)), log_dir, lambda: requests.get(url, timeout=1).ok)


def base() -> str:
    return f"http://127.0.0.1:{WEB_PORT}"


class CpuMeter:
    """CPU seconds by process tree, from /proc: each live process's user + system time
    and its reaped children's (so a process that exited meanwhile still counts)."""

    def __init__(self) -> None:
        self.roots: dict[str, list[int]] = {name: [] for name in (*PIPELINE, *APART)}
        self.roots["postgres"] = [int((ROOT / ".var/postgres/postmaster.pid").read_text().split()[0])]
        port = os.environ["CELERY_BROKER_URL"].rsplit(":", 1)[1].split("/")[0]
        for p in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "redis-server" and f":{port}" in cmdline:
                self.roots["redis"].append(p.pid)
            elif p.info["name"] == "java" and "kafka.Kafka" in cmdline:
                self.roots["kafka"].append(p.pid)

    def sample(self) -> dict[str, float]:
        seconds = {}
        for name, pids in self.roots.items():
            total = 0.0
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    if name == "client":  # this process alone: its children are the servers
                        t = root.cpu_times()
                        total += t.user + t.system
                        continue
                    for p in [root, *root.children(recursive=True)]:
                        t = p.cpu_times()
                        total += t.user + t.system + t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    continue
            seconds[name] = total
        return seconds


def engine_cpu_ms(config: dict, repeats: int = 200) -> float:
    """The engine's CPU per job on this config, alone in this process (one thread)."""
    parsed = SimulationConfig.from_dict(snake_keys(config), engine_limits())
    history = TradeHistory.from_records(TRADES)
    simulate(history, parsed, limits=engine_limits(), parallel=False)
    started = time.process_time()
    for _ in range(repeats):
        simulate(history, parsed, limits=engine_limits(), parallel=False).summary()
    return (time.process_time() - started) / repeats * 1000


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


def create_over_http(prefix: str, n: int, config: dict, clients: int = 16, rate: float | None = None) -> None:
    """POST n jobs from ``clients`` threads, as fast as they answer or at ``rate`` per second."""
    session = _session(clients)
    start = time.perf_counter()

    def post(i: int) -> None:
        if rate is not None:
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        r = session.post(
            f"{base()}/simulations",
            json={"assessmentId": f"{prefix}{i}", "trades": TRADES, "config": config},
            timeout=30,
        )
        assert r.status_code == 202, r.text

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(n)))


def create_over_http_in_batches(prefix: str, n: int, config: dict, per_request: int = 100, clients: int = 4) -> None:
    """POST /simulations/batch with ``per_request`` jobs each."""
    session = _session(clients)

    def post(lo: int) -> None:
        jobs = [
            {"assessmentId": f"{prefix}{i}", "trades": TRADES, "config": config}
            for i in range(lo, min(n, lo + per_request))
        ]
        r = session.post(f"{base()}/simulations/batch", json={"jobs": jobs}, timeout=60)
        assert r.status_code == 202, r.text

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(0, n, per_request)))


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


def start_daily_run(run_date: dt.date) -> None:
    current_app.send_task(task_names.SCHEDULE_DAILY_FUNDED_RUNS, kwargs={"run_date": run_date.isoformat()})


def create_over_kafka_topic(prefix: str, n: int, config: dict) -> None:
    from django.conf import settings

    create_over_kafka(prefix, n, config, f"{settings.KAFKA_TOPIC_PREFIX}assessment.completed")


def create_paced(prefix: str, n: int, config: dict) -> None:
    create_over_http(prefix, n, config, rate=100.0)


# (label, job id prefix, the web's environment, how its jobs are created): the setups' rows in turn
ONE_THREAD = {"WEB_CONCURRENCY": "3", "WEB_THREADS": "1"}  # gunicorn 3 processes x 1 thread
PUSHED = {"SIMULATION_API_PULL": "false"}  # the API's jobs in messages of their ids, not taken by wake-ups
AT_ONCE = {"SIMULATION_DISPATCH_WINDOW_MS": "0"}  # no window: a message per request pushed, a wake-up per claim pulled
ROWS: list[tuple[str, str, dict[str, str], Callable[[str, int, dict], None]]] = [
    ("API, a message per job", "bapi1", {**PUSHED, **AT_ONCE}, create_over_http),
    ("API, pushed, coalesced", "bapi", PUSHED, create_over_http),
    ("API, pulled, woken at once", "bpull0", AT_ONCE, create_over_http),
    ("API, pulled", "bpull", {}, create_over_http),
    ("API, pulled, web 3 x 1 thread", "bapi3", ONE_THREAD, create_over_http),
    ("API at 100 jobs/s, woken at once", "bpaced0", AT_ONCE, create_paced),
    ("API at 100 jobs/s", "bpaced", {}, create_paced),
    ("API at 100 jobs/s, web 3 x 1 thread", "bpaced3", ONE_THREAD, create_paced),
    (
        "API batch, pushed, 16 jobs a message",
        "bbatch16",
        {**PUSHED, "SIMULATION_TASK_BATCH": "16"},
        create_over_http_in_batches,
    ),
    ("API batch, pushed", "bbatchp", PUSHED, create_over_http_in_batches),
    ("API batch, pulled", "bbatch", {}, create_over_http_in_batches),
    ("Kafka", "bkafka", {}, create_over_kafka_topic),
]


def jobs_of(prefix: str, daily: bool):
    field = "funded_account_id" if daily else "assessment_id"
    return SimulationJob.objects.filter(**{f"{field}__startswith": prefix})


def wait_done(prefix: str, n: int, timeout: float, daily: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection.close()
        if jobs_of(prefix, daily).filter(status=JobStatus.COMPLETED).count() >= n:
            return
        time.sleep(1.0 if daily else 0.2)
    counts = dict(jobs_of(prefix, daily).values_list("status").annotate(n=Count("id")))
    raise AssertionError(f"{prefix}: not all {n} jobs completed in {timeout}s: {counts}")


DAILY: list[str] = []  # the daily run's time, under the table
OUT = Report("end_to_end", "End to end: jobs per second, latency and CPU per job through the real processes")
HEADER = (
    f"{'workers / path':<48} | {'jobs':>7} | {'jobs/s':>6} | {'p50 ms':>7} | {'p95 ms':>7} | {'p99 ms':>7} | "
    + " | ".join(f"{name:>8}" for name in PIPELINE)
    + f" | {'overhead':>8} | "
    + " | ".join(f"{name:>6}" for name in APART)
)


def report(label: str, prefix: str, n: int, cpu: dict[str, float], engine_ms: float, daily: bool = False) -> None:
    """One row: throughput and latency from the jobs' rows, CPU ms per job by process."""
    rows = jobs_of(prefix, daily).values_list("created_at", "completed_at", "status", "attempts")
    first = last = None
    latency, statuses, attempts = [], set(), set()
    for created, completed, status, tries in rows.iterator(chunk_size=5_000):
        statuses.add(status)
        attempts.add(tries)
        latency.append((completed - created).total_seconds() * 1000)
        first = created if first is None else min(first, created)
        last = completed if last is None else max(last, completed)
    assert len(latency) == n and statuses == {JobStatus.COMPLETED}, f"{label}: a job was lost or failed: {statuses}"
    assert attempts == {1}, f"{label}: a job ran more than once: attempts {attempts}"
    assert first is not None and last is not None
    per_job = {name: seconds * 1000 / n for name, seconds in cpu.items()}
    overhead = sum(per_job[name] for name in PIPELINE) - engine_ms
    OUT.line(
        f"{label:<48} | {n:>7,} | {n / (last - first).total_seconds():>6.0f} | {pct(latency, 50):>7.0f} | "
        f"{pct(latency, 95):>7.0f} | {pct(latency, 99):>7.0f} | "
        + " | ".join(f"{per_job[name]:>8.2f}" for name in PIPELINE)
        + f" | {overhead:>8.2f} | "
        + " | ".join(f"{per_job[name]:>6.2f}" for name in APART)
    )


def measured(meter: CpuMeter, create: Callable[[], None], wait: Callable[[], None]) -> dict[str, float]:
    """CPU seconds by process from before ``create`` until ``wait`` returns."""
    before = meter.sample()
    create()
    wait()
    after = meter.sample()
    return {name: after[name] - before[name] for name in before}


def vacuum() -> None:
    """Clean the tables now, so that no row an earlier run deleted is vacuumed during a
    measurement (autovacuum's CPU is PostgreSQL's, and 100,000 deleted jobs are seconds of it)."""
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) simulations_simulationjob, simulations_eventoutbox")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=100_000, help="funded accounts in the daily run (0: none)")
    parser.add_argument(
        "--setups",
        default="prefork:1x2,threads:1x8,threads:2x8",
        type=setups_of,
        help="worker setups in turn, pool:processes x concurrency; the daily run uses the first",
    )
    parser.add_argument(
        "--rows",
        default="",
        help="only the rows whose tags are given, comma-separated (bapi1,bpaced,...); the table is then not saved",
    )
    parser.add_argument(
        "--task-events",
        action="store_true",
        help="one worker, each path with Celery's task events off and then on (what Flower and celery-exporter need)",
    )
    args = parser.parse_args()
    # a run stopped with SIGTERM still stops the processes it started and deletes its jobs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
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
    run = uuid.uuid4().hex[:6]
    topic_prefix = f"bench{run}."
    os.environ["KAFKA_TOPIC_PREFIX"] = topic_prefix
    from django.conf import settings

    settings.KAFKA_TOPIC_PREFIX = topic_prefix
    settings.KAFKA_BOOTSTRAP_SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    ensure_topics()
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    daily_prefix = f"bdaily-{run}-"
    core = core_service(args.accounts, daily_prefix, log_dir)
    env = dict(
        os.environ,
        CORE_SERVICE_URL=f"http://127.0.0.1:{CORE_PORT}",
        DEFAULT_JOB_CONFIG=json.dumps(config),  # the daily run's jobs: the same size as the others
        BRIDGE_METRICS_PORT="0",
        API_RATE_LIMIT="10000000/minute",  # the benchmark is one client sending as fast as it can
        KAFKA_CONSUMER_GROUP=f"bench-{run}",
        PYTHONPATH=str(ROOT),
    )
    engine_ms = engine_cpu_ms(config)
    vacuum()
    print(f"logs in {log_dir}")
    OUT.line(f"{args.jobs} jobs per row, {args.paths} paths x 50 trades each; latency = created -> completed (ms)")
    OUT.line(f"CPU ms per job by process; the engine alone: {engine_ms:.2f} ms per job, not in 'overhead'")
    OUT.line(HEADER)
    OUT.line("-" * len(HEADER))
    # (worker setup, task events): the setups' rows, or the first with events off and on
    first = args.setups[0]
    setups = [(first, False), (first, True)] if args.task_events else [(setup, False) for setup in args.setups]
    meter = CpuMeter()
    meter.roots["core"] = [core.proc.pid]
    meter.roots["client"] = [os.getpid()]
    try:
        for (pool, processes, concurrency), events in setups:
            # publishers (web, bridge) send task-sent events too: every process in the same mode
            mode = dict(env, CELERY_TASK_EVENTS=str(events).lower())
            # as the chart runs them: prefork children with numba's kernels, threads each serial
            mode.update(WORKER_POOL=pool, ENGINE_PARALLEL=str(pool == "prefork").lower())
            setup = f"{pool}{processes}x{concurrency}{'e' if events else ''}"
            label = f"{processes} x {pool} {concurrency}{', events' if events else ''}"
            bridge = BridgeProcess(mode, log_dir).start()
            workers = [
                WorkerProcess(f"bench-{setup}-{k}", mode, log_dir, concurrency=concurrency).start()
                for k in range(processes)
            ]
            meter.roots["worker"] = [w.proc.pid for w in workers if w.proc is not None]
            meter.roots["bridge"] = [bridge.proc.pid] if bridge.proc is not None else []
            try:
                wanted = set(filter(None, args.rows.split(",")))
                for name, tag, extra, create in (row for row in ROWS if not wanted or row[1] in wanted):
                    server = web(dict(mode, **extra), log_dir)
                    meter.roots["web"] = [server.proc.pid]
                    prefix = f"{tag}-{run}-{setup}-"
                    try:
                        cpu = measured(
                            meter,
                            partial(create, prefix, args.jobs, config),
                            partial(wait_done, prefix, args.jobs, 600),
                        )
                    finally:
                        server.stop()
                    report(f"{label}, {name}", prefix, args.jobs, cpu, engine_ms)
                if args.accounts and (pool, processes, concurrency) == first and not events:
                    day = dt.date(2000, 1, 1) + dt.timedelta(days=int(run, 16) % 20_000)
                    started = time.monotonic()
                    cpu = measured(
                        meter,
                        partial(start_daily_run, day),
                        partial(wait_done, daily_prefix, args.accounts, 3_600, daily=True),
                    )
                    took = time.monotonic() - started
                    report(f"{label}, daily run", daily_prefix, args.accounts, cpu, engine_ms, daily=True)
                    DAILY.append(
                        f"daily run: {args.accounts:,} accounts in {took:.0f} s from its task's send to the last "
                        f"job's completion (listing the accounts and creating the jobs included)"
                    )
            finally:
                for w in workers:
                    w.stop()
                bridge.stop()
        for line in DAILY:
            OUT.line(line)
        if not args.rows:  # a few rows try a lever; the docs quote the whole table
            OUT.save()
    finally:
        core.stop()
        SimulationJob.objects.filter(
            assessment_id__regex=r"^b(api[13]?|pull0?|paced[03]?|batch(16|p)?|kafka)-"
        ).delete()
        SimulationJob.objects.filter(funded_account_id__startswith="bdaily-").delete()
        vacuum()


if __name__ == "__main__":
    main()
