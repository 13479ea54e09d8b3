"""A real Prometheus server (Debian's ``prometheus``, installed by deploy/test.sh) with the
shipped scrape config and alert rules, scraping a real gunicorn web process and a real
worker: after jobs complete its HTTP API returns their metrics, every rule evaluates
without error, and an alert goes pending when its condition starts to hold (the worker
stops) while another stays silent."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests import factories
from tests.deploy.test_artifacts import series_in
from tests.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy/prometheus"


def scrape_config(tmp: Path, targets: dict[str, list[str]], exporter: str = "", broker_db: int = 0) -> Path:
    """The shipped prometheus.yml with local targets for the jobs this test runs (and
    only those), scraped and evaluated every second instead of every 15; the Redis jobs
    go through the local exporter, the broker's queue lists in its test database."""
    config = yaml.safe_load((SHIPPED / "prometheus.yml").read_text())
    # scrapes every second (each may take that long on a loaded machine), rules as often
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(tmp / "alerts.yml"), str(tmp / "recording.yml")]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert {job["job_name"] for job in jobs} == set(targets), "the shipped config names these jobs"
    for job in jobs:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
        for relabel in job.get("relabel_configs", []):
            if relabel.get("target_label") == "__address__":
                relabel["replacement"] = exporter
        if "check-single-keys" in job.get("params", {}):
            job["params"]["check-single-keys"] = [
                ",".join(
                    f"db{broker_db}={key.split('=', 1)[1]}" for key in job["params"]["check-single-keys"][0].split(",")
                )
            ]
    config["scrape_configs"] = jobs
    shutil.copy(SHIPPED / "alerts.yml", tmp / "alerts.yml")
    shutil.copy(SHIPPED / "recording.yml", tmp / "recording.yml")
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(tmp_path) -> Iterator[Callable[[dict[str, str]], str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, list[str]], **redis: object) -> str:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is installed by deploy/test.sh (Debian package prometheus)"
        port = free_port()
        with open(tmp_path / "prometheus.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        f"--config.file={scrape_config(tmp_path, targets, **redis)}",
                        f"--storage.tsdb.path={tmp_path / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert procs[-1].poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            return requests.get(f"{url}/-/ready", timeout=1).ok

        until(ready, 60, "prometheus ready")
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)


def until(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def query(url: str, expr: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def alerts(url: str) -> dict[str, str]:
    """Each active alert's state (pending or firing); inactive ones are absent."""
    data = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in data}


def test_prometheus_scrapes_web_and_worker_and_evaluates_the_rules(make_web, make_worker, prometheus, tmp_path):
    from simulations.keys_redis import keys_redis
    from workers import last_success

    keys_redis().delete(last_success.KEY)  # no sweep reported, whatever ran before
    base, web_metrics, _ = make_web()
    worker_metrics = free_port()
    (tmp_path / "worker-metrics").mkdir()
    worker = make_worker(
        "scraped",
        WORKER_METRICS_PORT=str(worker_metrics),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),  # the children's numbers
    )
    url = prometheus(
        {"montecarlo-web": [f"127.0.0.1:{web_metrics}"], "montecarlo-worker": [f"127.0.0.1:{worker_metrics}"]}
    )
    http = requests.Session()
    http.headers.update(factories.auth_headers())
    ids = []
    for i in range(3):
        created = http.post(
            f"{base}/simulations",
            json={"assessmentId": f"PROM-{i}", "trades": factories.trades(50), "config": factories.config(paths=500)},
            timeout=10,
        )
        assert created.status_code == 202, created.text
        ids.append(created.json()["jobId"])
    for job_id in ids:
        until(
            lambda j=job_id: http.get(f"{base}/simulations/{j}", timeout=5).json()["status"] == "completed", 90, job_id
        )

    # both targets up, with the job names the rules and the dashboard expect
    up = until(lambda: len(r := query(url, "up == 1")) == 2 and r, 30, "both targets up")
    assert {s["metric"]["job"] for s in up} == {"montecarlo-web", "montecarlo-worker"}
    completed = 'sum(montecarlo_jobs_finished_total{job="montecarlo-worker", status="completed"})'
    until(lambda: (r := query(url, completed)) and float(r[0]["value"][1]) >= 3, 30, "completed jobs scraped")
    posts = 'sum(montecarlo_http_requests_total{job="montecarlo-web", route="simulations", status="202"})'
    until(lambda: (r := query(url, posts)) and float(r[0]["value"][1]) == 3, 30, "the POSTs scraped")
    queues = {s["metric"]["queue"] for s in query(url, "montecarlo_queue_length")}
    assert queues == {"simulations", "maintenance"}
    waited = query(url, "montecarlo_job_queue_wait_seconds_count")
    assert sum(float(s["value"][1]) for s in waited) >= 3

    # every rule evaluates cleanly against real series; none fires with a worker up
    def evaluated() -> list[dict]:
        groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else []

    rules = until(evaluated, 30, "a round of rule evaluations")
    assert {r["health"] for r in rules} == {"ok"}, [(r["name"], r.get("lastError")) for r in rules]
    # an evaluation before the worker's first scrape may have set it pending: with the
    # worker scraped it goes back to inactive
    until(lambda: "MonteCarloNoWorkers" not in alerts(url), 30, "no alert on workers while one runs")
    # no beat runs here, so no sweep was ever reported: that alert is on its way
    until(lambda: alerts(url).get("MonteCarloSweepNotRunning") == "pending", 30, "the sweep alert pending")

    worker.stop()
    until(lambda: alerts(url).get("MonteCarloNoWorkers") == "pending", 60, "the no-workers alert pending")
    assert "MonteCarloHttpErrors" not in alerts(url)


# Panels whose series exist only once their event has happened (a requeue, a refused
# enqueue or event, a Kafka error, a consumed event): this scrape has none of them.
ONLY_AFTER_THEIR_EVENT = {
    "montecarlo_jobs_requeued_total",
    "montecarlo_jobs_resent_total",
    "montecarlo_stale_heartbeats_total",
    "montecarlo_enqueue_failures_total",
    "montecarlo_kafka_consumer_lag",
    "job:montecarlo_kafka_events:rate5m",
    "job:montecarlo_kafka_errors:rate5m",
    "job:montecarlo_outbox_refused:rate5m",
}


@pytest.fixture
def redis_exporter(tmp_path) -> Iterator[str]:
    port = free_port()
    with open(tmp_path / "redis-exporter.log", "ab") as log:
        proc = subprocess.Popen(
            ["bash", "deploy/redis-exporter.sh", "run", str(port)], cwd=ROOT, stdout=log, stderr=log
        )
    address = f"127.0.0.1:{port}"
    try:
        until(lambda: requests.get(f"http://{address}/metrics", timeout=1).ok, 60, "the Redis exporter")
        yield address
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_fleet_at_a_glance_workers_redis_cluster_and_recorded_rates(
    make_web, make_worker, make_bridge, prometheus, redis_exporter, tmp_path, kafka_topics
):
    """Two workers, the web process, the bridge and the Redis exporter (broker and the six
    cluster nodes), scraped with the shipped config: a killed worker leaves the live
    count, the cluster's nodes show with their roles, the recording rules evaluate, and
    every series the dashboard draws exists in this scrape (but those that need an event
    nobody caused here)."""
    from celery import current_app
    from django.conf import settings

    from simulations import task_names

    base, web_metrics, _ = make_web()
    ports = {name: free_port() for name in ("w1", "w2", "bridge")}
    workers = {}
    for name in ("w1", "w2"):
        (tmp_path / f"metrics-{name}").mkdir()
        workers[name] = make_worker(
            name, WORKER_METRICS_PORT=str(ports[name]), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{name}")
        )
    make_bridge(BRIDGE_METRICS_PORT=str(ports["bridge"]))
    from redis.cluster import RedisCluster

    nodes = RedisCluster.from_url(os.environ["REDIS_CLUSTER_URL"]).get_nodes()
    cluster = sorted(f"redis://{node.host}:{node.port}" for node in nodes)
    assert len(cluster) == 6
    broker_db = int(settings.CELERY_BROKER_URL.rsplit("/", 1)[1])
    url = prometheus(
        {
            "montecarlo-web": [f"127.0.0.1:{web_metrics}"],
            "montecarlo-worker": [f"127.0.0.1:{ports['w1']}", f"127.0.0.1:{ports['w2']}"],
            "montecarlo-bridge": [f"127.0.0.1:{ports['bridge']}"],
            "redis-broker": [settings.CELERY_BROKER_URL.rsplit("/", 1)[0]],
            "redis-keys": cluster,
        },
        exporter=redis_exporter,
        broker_db=broker_db,
    )

    def live() -> dict[str, float]:
        return {s["metric"]["worker"]: float(s["value"][1]) for s in query(url, "montecarlo_worker_up == 1")}

    # both workers scraped before any task runs, so the counters' increase is seen
    until(lambda: len(live()) == 2, 30, "two live workers")
    assert set(live()) == {f"{name}@{socket.gethostname()}" for name in workers}
    http = requests.Session()
    http.headers.update(factories.auth_headers())
    ids = [
        http.post(
            f"{base}/simulations",
            json={"assessmentId": f"FLEET-{i}", "trades": factories.trades(40), "config": factories.config(paths=400)},
            timeout=10,
        ).json()["jobId"]
        for i in range(6)
    ]
    current_app.send_task(task_names.SWEEP_STALE_JOBS)  # a scheduled task's last success
    for job_id in ids:
        until(
            lambda j=job_id: http.get(f"{base}/simulations/{j}", timeout=5).json()["status"] == "completed", 90, job_id
        )

    tasks = 'sum(worker:montecarlo_worker_tasks:rate5m{result="succeeded"})'
    until(lambda: (r := query(url, tasks)) and float(r[0]["value"][1]) > 0, 30, "the recorded task rate")
    roles = until(
        lambda: len(r := query(url, 'count by (role) (redis_instance_info{job="redis-keys"})')) == 2 and r,
        30,
        "the cluster's nodes with their roles",
    )
    assert {s["metric"]["role"]: int(s["value"][1]) for s in roles} == {"master": 3, "slave": 3}
    assert len(query(url, 'redis_up{job="redis-keys"} == 1')) == 6
    assert {s["metric"]["key"] for s in query(url, 'redis_key_size{job="redis-broker"}')} == {
        "simulations",
        "maintenance",
    }
    until(lambda: query(url, 'montecarlo_task_last_success_timestamp_seconds{task="sweep"}'), 30, "the sweep")

    # every series a panel draws is in this scrape, or waits for its event
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/montecarlo.json").read_text())
    drawn = {name for p in dashboard["panels"] for t in p["targets"] for name, _ in series_in(t["expr"])}
    assert drawn > ONLY_AFTER_THEIR_EVENT

    def missing() -> set[str]:
        return {name for name in drawn - ONLY_AFTER_THEIR_EVENT if not query(url, f"count({name})")}

    until(lambda: not missing(), 40, "every panel's series")

    workers["w2"].kill()
    until(lambda: set(live()) == {f"w1@{socket.gethostname()}"}, 30, "the killed worker to leave")
    until(lambda: "MonteCarloNoWorkers" not in alerts(url), 30, "no alert on workers while one still runs")
