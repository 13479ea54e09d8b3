"""The worker fleet under crashes and scale-out, with real processes: celery
workers and beat, PostgreSQL, the Redis broker and the Redis Cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.db import connection
from redis.cluster import RedisCluster

from simulations import services
from simulations.models import EventOutbox, JobStatus, SimulationJob
from simulations.services.dispatch import enqueue_jobs
from tests import factories
from tests.triggers import refusing
from workers import heartbeat, schedules

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
# Big enough to take several seconds on one core, so a worker can be killed mid-job.
LONG = {
    "paths": 1_500_000,
    "horizon": 2_000,
    "seed": 3,
    "stopAtDecision": False,
    "rules": {"maxDrawdown": 5_000, "profitTarget": 4_000},
}


def wait(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def job_row(job_id) -> SimulationJob:
    connection.close()  # a fresh snapshot of what the workers wrote
    return SimulationJob.objects.get(pk=job_id)


def running_pid(job_id) -> int:
    job = wait(
        lambda: (j := job_row(job_id)).status == JobStatus.RUNNING and j.paths_done > 0 and j,
        60,
        "the job to be running",
    )
    return int(job.worker_id.rsplit(":", 1)[1])


def events_of(job_id, topic) -> int:
    return EventOutbox.objects.filter(job_id=job_id, topic=topic).count()


def completed_once(jobs, timeout: float) -> None:
    """Every job completes, announced started and completed once each."""
    for job in jobs:
        done = wait(lambda job=job: (j := job_row(job.id)).is_finished and j, timeout, "every job to finish")
        assert done.status == JobStatus.COMPLETED, done.error
        assert events_of(job.id, "montecarlo.simulation-started") == 1
        assert events_of(job.id, "montecarlo.simulation-completed") == 1


def test_sigkilled_worker_job_is_picked_up_again_and_completes_once(make_worker, make_beat, settings):
    settings.STALE_JOB_SWEEP_INTERVAL = 1
    schedules.ensure_schedules()
    first = make_worker("victim")
    job = services.create_job(assessment_id="K-1", trades=factories.trades(200), config=LONG)
    running_pid(job.id)
    first.kill()  # the whole worker, parent and child: nothing can requeue the message
    killed_at = time.monotonic()
    make_worker("rescuer")
    make_beat()  # the real sweep, every second, once the dead worker's heartbeat expires
    done = wait(lambda: (j := job_row(job.id)).is_finished and j, 120, "the job to finish")
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.attempts == 2 and done.result["paths"] == LONG["paths"]
    assert time.monotonic() - killed_at < 120
    assert events_of(job.id, "montecarlo.simulation-started") == 1
    assert events_of(job.id, "montecarlo.simulation-completed") == 1


def test_the_jobs_a_dead_worker_held_run_again_within_a_minute_and_once(make_worker, make_beat, settings):
    """A worker killed whole (main process and child, as a pod dies) while one job of a
    bulk message runs: the running job is requeued by its child's heartbeat, and the
    jobs of the message not started yet are re-sent from what the main process had
    published (workers.held), without the hour of the broker's visibility timeout or
    the ten minutes of the pending re-send (PENDING_REQUEUE_AFTER, default here)."""
    from simulations.keys_redis import keys_redis
    from workers import held

    settings.STALE_JOB_SWEEP_INTERVAL = 1
    schedules.ensure_schedules()
    config = dict(LONG, paths=400_000)
    jobs = [
        services.create_job(assessment_id=f"H-{i}", trades=factories.trades(200), config=config, enqueue=False)
        for i in range(4)
    ]
    victim = make_worker("holder")
    enqueue_jobs([job.id for job in jobs])  # one bulk message of four jobs
    wait(lambda: any(job_row(j.id).status == JobStatus.RUNNING for j in jobs), 60, "one job to run")
    main_id = f"{heartbeat.host_name()}:{victim.proc.pid}"
    published = wait(
        lambda: (raw := keys_redis().hget(held.HELD_KEY, main_id)) and len(json.loads(raw)["jobs"]) == 4,
        10,
        "the main process to publish the message it holds",
    )
    assert published
    victim.kill()
    killed_at = time.monotonic()
    assert sum(job_row(j.id).status == JobStatus.PENDING for j in jobs) >= 2  # held, not started
    rescuer = make_worker("rescuer")
    make_beat()
    completed_once(jobs, timeout=90)
    assert time.monotonic() - killed_at < 60
    assert keys_redis().hget(held.HELD_KEY, main_id) is None  # forgotten once re-sent
    assert f"held by dead worker {main_id}" in rescuer.log_path.read_text()


def test_pulled_jobs_of_a_killed_worker_are_taken_again_and_complete_once(make_worker, make_beat, settings):
    """A worker killed whole while it runs the API jobs one wake-up took: its wake-up's
    message waits for the broker's visibility timeout, so the rescue is the sweep's. It
    requeues and re-sends the running job (its heartbeat expired), and frees the jobs
    the dead take reserved (its main process's held entry named the wake-up) and wakes
    a worker for them, long before SIMULATION_RESERVATION_LEASE (120 s) would."""
    settings.STALE_JOB_SWEEP_INTERVAL = 1
    schedules.ensure_schedules()
    config = dict(LONG, paths=400_000)
    jobs = [
        services.create_job(assessment_id=f"P-{i}", trades=factories.trades(200), config=config) for i in range(4)
    ]  # API jobs (the default trigger): one wake-up, no job ids on the queue
    victim = make_worker("taker")
    wait(lambda: any(job_row(j.id).status == JobStatus.RUNNING for j in jobs), 60, "one job to run")
    reserved = {job_row(j.id).reserved_by for j in jobs}
    assert len(reserved) == 1 and "" not in reserved  # one take holds all four
    victim.kill()
    killed_at = time.monotonic()
    assert sum(job_row(j.id).status == JobStatus.PENDING for j in jobs) >= 2  # taken, not started
    rescuer = make_worker("rescuer")
    make_beat()
    completed_once(jobs, timeout=90)
    assert time.monotonic() - killed_at < 60
    retaken = {job_row(j.id).reserved_by for j in jobs}
    assert retaken - reserved  # some taken again by a wake-up the sweep sent
    log = rescuer.log_path.read_text()
    assert "run_pending_jobs" in log and "pulled jobs reserved by dead worker" in log


def test_a_job_that_kills_its_worker_every_time_fails_after_the_cap(make_worker):
    make_worker("oom", SIMULATION_MAX_ATTEMPTS="3")
    job = services.create_job(assessment_id="K-2", trades=factories.trades(200), config=LONG)
    for attempt in (1, 2, 3):
        pid = running_pid(job.id)
        assert job_row(job.id).attempts == attempt
        os.kill(pid, signal.SIGKILL)  # what the OOM killer does to the child
        wait(
            lambda pid=pid: (
                job_row(job.id).worker_id != f"{heartbeat.host_name()}:{pid}" or job_row(job.id).is_finished
            ),
            60,
            "the redelivered task to act",
        )
    done = wait(lambda: (j := job_row(job.id)).is_finished and j, 60, "the job to give up")
    assert done.status == JobStatus.FAILED
    assert "3 attempts" in done.error
    assert events_of(job.id, "montecarlo.simulation-completed") == 1


def test_graceful_shutdown_removes_the_heartbeat_and_a_kill_lets_it_expire(make_worker):
    r = redis.Redis.from_url(os.environ["KEYS_REDIS_URL"], decode_responses=True)

    def keys_of(worker):
        return [
            k
            for k in r.scan_iter(f"{heartbeat.KEY_PREFIX}*")
            if json.loads(r.get(k) or "{}").get("worker_name", "").startswith(worker)
        ]

    polite = make_worker("polite")
    assert wait(lambda: keys_of("polite@"), 30, "a heartbeat")
    polite.stop()
    assert keys_of("polite@") == []
    rude = make_worker("rude")
    key = wait(lambda: keys_of("rude@"), 30, "a heartbeat")[0]
    rude.kill()
    assert r.exists(key)  # nobody deleted it...
    wait(lambda: not r.exists(key), 10, "the key to expire")  # ...the TTL (3 s here) did


def test_two_workers_many_jobs_every_job_completes_exactly_once(make_worker):
    # Takes of 8: the 40 jobs can never fit one take, and a full take wakes the other worker.
    make_worker("a", SIMULATION_TASK_BATCH="8")
    make_worker("b", SIMULATION_TASK_BATCH="8")
    small = factories.config(paths=3_000)
    ids = [
        services.create_job(assessment_id=f"M-{i}", trades=factories.trades(50, seed=i), config=small).id
        for i in range(40)
    ]
    wait(
        lambda: SimulationJob.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == 40,
        120,
        "all jobs to complete",
    )
    jobs = SimulationJob.objects.filter(pk__in=ids)
    assert {j.attempts for j in jobs} == {1}
    assert len({j.worker_id.split(":")[0] for j in jobs}) == 1  # one host...
    assert len({j.worker_id for j in jobs}) == 2  # ...two worker processes shared the work
    for job_id in ids:
        assert events_of(job_id, "montecarlo.simulation-started") == 1
        assert events_of(job_id, "montecarlo.simulation-completed") == 1


def test_heartbeats_survive_a_cluster_master_failover(make_worker):
    cluster_url = os.environ["REDIS_CLUSTER_URL"]
    worker = make_worker("clustered", REDIS_CLUSTER="true", KEYS_REDIS_URL=cluster_url)
    rc = RedisCluster.from_url(cluster_url, decode_responses=True)

    def newest_beat():
        ids = rc.zrevrange(heartbeat.INDEX_KEY, 0, -1)
        beats = (
            [json.loads(v) for v in rc.mget_nonatomic([heartbeat.heartbeat_key(i) for i in ids]) if v] if ids else []
        )
        mine = [b for b in beats if b["worker_name"].startswith("clustered@")]
        return max((b["timestamp"] for b in mine), default=None)

    wait(newest_beat, 30, "a heartbeat in the cluster")
    master = rc.get_node_from_key(heartbeat.INDEX_KEY)
    port = master.port
    try:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False, capture_output=True)
        killed_at = time.time()
        job = services.create_job(assessment_id="C-1", trades=factories.trades(80), config=factories.config())
        # a replica is promoted and the worker's heartbeats land there
        wait(lambda: (b := newest_beat_safe(newest_beat)) and b > killed_at + 1, 60, "heartbeats after failover", 0.5)
        done = wait(lambda: (j := job_row(job.id)).is_finished and j, 60, "the job")
        assert done.status == JobStatus.COMPLETED, done.error
        assert worker.proc.poll() is None
    finally:
        subprocess.run(["bash", str(ROOT / "deploy" / "redis-cluster.sh"), "start"], check=True, capture_output=True)


def newest_beat_safe(read):
    try:
        return read()
    except Exception:  # the client is still learning the new topology
        return None


def test_live_workers_are_listed_and_the_liveness_probe_passes(make_worker, live_server, worker_env):
    import requests

    env = dict(worker_env, DATABASE_URL=os.environ["DATABASE_URL"])
    probe = [
        os.sys.executable,
        "manage.py",
        "worker_alive",
        "--timeout",
        "3",
        "--node",
        f"probed@{heartbeat.host_name()}",
    ]
    worker = make_worker("probed", WORKER_HEARTBEAT_INTERVAL="1")
    operator = factories.auth_headers("operate")
    listed = wait(
        lambda: [
            w
            for w in requests.get(f"{live_server.url}/workers", headers=operator, timeout=5).json()["workers"]
            if w["workerName"].startswith("probed@")
        ],
        30,
        "the worker in /workers",
    )
    assert listed[0]["status"] == "idle" and listed[0]["heartbeatTtl"] == 3
    ok = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "probed@" in ok.stdout
    worker.stop()
    dead = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    assert dead.returncode != 0 and "no heartbeat" in dead.stderr


def test_a_failed_batch_is_redelivered_and_written_later(make_worker):
    """Thread-pool worker, batch writer, and a database that refuses the flush for a while."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS mc_test_block (id int)")
        cursor.execute("INSERT INTO mc_test_block VALUES (1)")
    try:
        with refusing(
            "simulations_simulationjob",
            "UPDATE",
            "EXISTS (SELECT 1 FROM mc_test_block) AND NEW.status = 'completed'",
            "flush refused for the test",
        ):
            worker = make_worker("threads", concurrency=8, ENGINE_PARALLEL="false", WORKER_POOL="threads")
            ids = [
                services.create_job(
                    assessment_id=f"BF-{i}",
                    trades=factories.trades(40, seed=i),
                    config=factories.config(paths=500),
                    enqueue=False,
                ).id
                for i in range(12)
            ]
            for job_id in ids:  # a message each (not coalesced): the writer's batches span tasks
                services.enqueue_job(job_id=job_id)
            wait(
                lambda: worker.log_path.read_text().count("result not written, redeliver") >= 12,
                60,
                "the refused flushes",
            )
            # nothing half-written
            assert SimulationJob.objects.filter(pk__in=ids, status=JobStatus.PENDING).count() == 12
            assert not EventOutbox.objects.filter(job_id__in=ids).exists()
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM mc_test_block")
            wait(
                lambda: SimulationJob.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == 12,
                60,
                "the redelivered tasks to write",
            )
            for job_id in ids:
                assert events_of(job_id, "montecarlo.simulation-completed") == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS mc_test_block")


def database_sessions() -> int:
    """Sessions ever opened on this database (PostgreSQL counts them as they start)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_keeps_its_database_connections_across_tasks(make_worker, pool):
    """Celery's Django fixup would close them around every task (a new PostgreSQL
    session per job); the worker keeps them, as Django does across requests."""
    worker = make_worker(f"conn-{pool}", concurrency=2, ENGINE_PARALLEL="false", WORKER_POOL=pool)

    def run(prefix: str, n: int) -> None:
        ids = [
            services.create_job(
                assessment_id=f"{prefix}-{i}", trades=factories.trades(30, seed=i), config=factories.config(paths=200)
            ).id
            for i in range(n)
        ]
        wait(
            lambda: SimulationJob.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == n,
            60,
            f"{n} jobs of {prefix}",
        )

    run("CONN-WARM", 6)  # every task thread (or child) and the batch writer have connected now
    time.sleep(1.5)  # a session's statistics reach the counter within a second
    before = database_sessions()
    run("CONN", 40)
    time.sleep(1.5)
    opened = database_sessions() - before
    assert opened <= 4, f"{opened} new database sessions for 40 jobs: connections are not kept"
    assert "Traceback" not in worker.log_path.read_text()


# 1.8e10 samples, 10-20 s at the fast kernels' 1-2 G samples/s on 2 cores: long enough
# to show what waits behind a simulation (at 1e10 an idle machine finished it in ~5 s,
# inside the 6 s the control waits).
LONGER = {**LONG, "paths": 4_000_000, "horizon": 4_500}


def ghost_held_job(account: str) -> SimulationJob:
    """A job 'running' for an hour on a worker with no heartbeat: the sweep's to requeue."""
    from datetime import timedelta

    from django.utils import timezone

    job = services.create_job(assessment_id=account, trades=[1.0, -1.0], config={"paths": 100}, enqueue=False)
    old = timezone.now() - timedelta(hours=1)
    SimulationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker_id="ghost-host:1", attempts=1, started_at=old, updated_at=old
    )
    return job


def swept_within(job: SimulationJob, seconds: float) -> bool:
    from celery import current_app

    from simulations import task_names

    current_app.send_task(task_names.SWEEP_STALE_JOBS)
    try:
        wait(lambda: job_row(job.id).worker_id != "ghost-host:1", seconds, "the sweep")
        return True
    except AssertionError:
        return False


def test_the_sweep_runs_on_time_beside_a_long_simulation_only_on_its_own_worker(make_worker):
    """Upkeep on its own worker (as the chart and compose run it) is not held up by a
    simulation; on one worker serving both queues it waits behind it (the control)."""
    shared = make_worker("shared", queues="simulations,maintenance")
    long = services.create_job(assessment_id="LONG-1", trades=factories.trades(200), config=LONGER)
    running_pid(long.id)
    ghost = ghost_held_job("GHOST-1")
    if swept_within(ghost, 6):  # a fast VM finished the simulation first: the sweep waited for it
        done = job_row(long.id)
        assert done.is_finished and job_row(ghost.id).updated_at >= done.completed_at
    services.cancel_job(job_id=long.id)
    shared.stop()

    make_worker("simulations-only", queues="simulations")
    make_worker("upkeep", queues="maintenance")
    busy = services.create_job(assessment_id="LONG-2", trades=factories.trades(200), config=LONGER)
    running_pid(busy.id)
    assert swept_within(ghost_held_job("GHOST-2"), 6)
    assert job_row(busy.id).status == JobStatus.RUNNING  # the simulation was never in the way
    services.cancel_job(job_id=busy.id)


def test_a_worker_started_while_its_broker_and_database_are_away_waits_and_then_runs(worker_env, tmp_path):
    """Started with nothing on its broker's port and no PostgreSQL at its DATABASE_URL, a
    worker neither exits nor writes a line per retry (Celery's "Cannot connect" at most
    once a minute); once a Redis answers there it connects, says so once, and is ready."""
    from tests.fakes.worker import WorkerProcess
    from tests.net import free_port

    broker_port, no_database = free_port(), free_port()
    env = dict(
        worker_env,
        CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0",
        DATABASE_URL=f"postgres://montecarlo:montecarlo@127.0.0.1:{no_database}/montecarlo",
    )
    worker = WorkerProcess("away", env, tmp_path, queues="simulations")
    with pytest.raises(RuntimeError, match="not ready"):
        worker.start(timeout=20)  # 20 s of retries at Celery's pace (every 2 s, then more)
    assert worker.proc is not None and worker.proc.poll() is None
    waiting = worker.log_path.read_text()
    assert waiting.count("Cannot connect to redis") == 1, waiting[-3000:]
    broker = subprocess.Popen(
        ["redis-server", "--port", str(broker_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in worker.log_path.read_bytes():
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.tail()
            time.sleep(0.5)
        assert worker.log_path.read_text().count(f"127.0.0.1:{broker_port}/0 [celery.worker.consumer.connection]") == 1
    finally:
        worker.stop()
        broker.terminate()
        broker.wait(10)


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_every_process_of_a_worker_freezes_its_heap_once_set_up_and_runs_jobs(make_worker, pool):
    """The main process freezes its heap (simulations.process.freeze_heap) before prefork
    forks the children, each child again once its kernels are loaded, a thread-pool
    worker after its own warm-up: each says how many objects, Django's, numpy's and
    numba's, leave the collector's walks. Jobs run as before."""
    worker = make_worker(f"frozen-{pool}", concurrency=2, ENGINE_PARALLEL="false", WORKER_POOL=pool)
    assert worker.proc is not None
    main = worker.proc.pid
    children = {
        int(pid) for pid in subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True).stdout.split()
    }
    log = worker.log_path.read_text()
    frozen_main = [int(n) for pid, n in re.findall(r"worker (\d+): (\d+) objects frozen", log) if int(pid) == main]
    frozen_children = {
        int(pid): int(n) for pid, n in re.findall(r"worker process (\d+) ready: .*, (\d+) objects frozen", log)
    }
    assert len(frozen_main) == 1 and frozen_main[0] > 100_000, frozen_main
    if pool == "prefork":
        assert len(children) == 2 and children <= frozen_children.keys(), (children, frozen_children)
        assert all(frozen_children[pid] > 100_000 for pid in children), frozen_children
    job = services.create_job(
        assessment_id=f"FROZEN-{pool}", trades=factories.trades(30), config=factories.config(paths=200)
    )
    wait(lambda: job_row(job.id).status == JobStatus.COMPLETED, 60, "the job")
    assert "Traceback" not in worker.log_path.read_text()
