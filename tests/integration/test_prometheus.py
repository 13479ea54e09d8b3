"""A real Prometheus server (Debian's ``prometheus``, installed by deploy/test.sh) with the
shipped scrape config and alert rules, scraping a real gunicorn web process and a real
worker: after jobs complete its HTTP API returns their metrics, every rule evaluates
without error, and an alert goes pending when its condition starts to hold (the worker
stops) while another stays silent."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests import factories
from tests.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy/prometheus"


def scrape_config(tmp: Path, targets: dict[str, str]) -> Path:
    """The shipped prometheus.yml with local targets for the jobs this test runs (and
    only those), scraped and evaluated every second instead of every 15."""
    config = yaml.safe_load((SHIPPED / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(tmp / "alerts.yml")]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert {job["job_name"] for job in jobs} == set(targets), "the shipped config names these jobs"
    for job in jobs:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    config["scrape_configs"] = jobs
    shutil.copy(SHIPPED / "alerts.yml", tmp / "alerts.yml")
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(tmp_path) -> Iterator[Callable[[dict[str, str]], str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, str]) -> str:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is installed by deploy/test.sh (Debian package prometheus)"
        port = free_port()
        with open(tmp_path / "prometheus.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        f"--config.file={scrape_config(tmp_path, targets)}",
                        f"--storage.tsdb.path={tmp_path / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        url = f"http://127.0.0.1:{port}"
        until(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, 60, "prometheus ready")
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
    from workers import last_success
    from workers.redis_client import keys_redis

    keys_redis().delete(last_success.KEY)  # no sweep reported, whatever ran before
    base, web_metrics, _ = make_web()
    worker_metrics = free_port()
    (tmp_path / "worker-metrics").mkdir()
    worker = make_worker(
        "scraped",
        WORKER_METRICS_PORT=str(worker_metrics),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),  # the children's numbers
    )
    url = prometheus({"montecarlo-web": f"127.0.0.1:{web_metrics}", "montecarlo-worker": f"127.0.0.1:{worker_metrics}"})
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
    assert "MonteCarloNoWorkers" not in alerts(url)
    # no beat runs here, so no sweep was ever reported: that alert is on its way
    until(lambda: alerts(url).get("MonteCarloSweepNotRunning") == "pending", 30, "the sweep alert pending")

    worker.stop()
    until(lambda: alerts(url).get("MonteCarloNoWorkers") == "pending", 60, "the no-workers alert pending")
    assert "MonteCarloHttpErrors" not in alerts(url)
