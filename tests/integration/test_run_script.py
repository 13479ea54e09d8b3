"""``deploy/run.sh``, the README's way to run the whole service, as a newcomer runs it:
real PostgreSQL, Redis and Kafka, real web, worker, beat and bridge processes. A job
created over HTTP completes, the admin login it prints works and shows the job, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_sh_starts_the_service_and_ctrl_c_stops_it():
    web, gunicorn, web_metrics, core, worker_metrics, bridge_metrics = (free_port() for _ in range(6))
    redis_port = os.environ.get("MC_REDIS_PORT", "26379")
    env = dict(
        os.environ,
        MC_WEB_PORT=str(web),
        MC_GUNICORN_PORT=str(gunicorn),
        MC_WEB_METRICS_PORT=str(web_metrics),
        MC_CORE_PORT=str(core),
        MC_WORKER_METRICS_PORT=str(worker_metrics),
        MC_BRIDGE_METRICS_PORT=str(bridge_metrics),
        # its own broker and key databases and topics, apart from the suite's
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/8",
        KEYS_REDIS_URL=f"redis://127.0.0.1:{redis_port}/9",
        KAFKA_TOPIC_PREFIX=f"run{uuid.uuid4().hex[:8]}.",
        KAFKA_CONSUMER_GROUP=f"run-{uuid.uuid4().hex[:6]}",
        WORKER_CONCURRENCY="1",
    )
    env.pop("CORE_SERVICE_URL", None)
    proc = subprocess.Popen(
        ["bash", str(ROOT / "deploy/run.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any("Press Ctrl-C" in line for line in out):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "run.sh exited early:\n" + "".join(out)
            out.append(line)
            assert time.monotonic() < deadline, "run.sh did not say it was ready:\n" + "".join(out)
        text = "".join(out)
        user, password = re.search(r"user (\S+), password (\S+)", text).groups()
        key = re.search(r"API key\s+(\S+)", text).group(1)
        http = requests.Session()
        http.headers["Authorization"] = f"Api-Key {key}"
        base = f"http://127.0.0.1:{web}"
        assert f"{base}/simulations" in text and f"{base}/admin/" in text and f"{base}/schema" in text

        # a job whose history comes from the Core Service stand-in run.sh started
        assert requests.post(f"{base}/simulations", json={"assessmentId": "A-1"}, timeout=10).status_code == 401
        created = http.post(f"{base}/simulations", json={"assessmentId": "A-1"}, timeout=10)
        assert created.status_code == 202, created.text
        job_id = created.json()["jobId"]
        deadline = time.monotonic() + 90
        while (job := http.get(f"{base}/simulations/{job_id}", timeout=10).json())["status"] != "completed":
            assert job["status"] in ("pending", "running"), job
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        # the sample history: 252 dated trades over 62 days, resampled by day
        assert job["result"]["paths"] > 0 and (job["result"]["unit"], job["result"]["horizon"]) == ("day", 62)

        admin = requests.Session()
        login = f"{base}/admin/login/"
        admin.get(login, timeout=10)
        page = admin.post(
            login,
            data={
                "username": user,
                "password": password,
                "csrfmiddlewaretoken": admin.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": login},
            timeout=10,
        )
        assert page.status_code == 200 and "Log out" in page.text, page.text[:500]
        detail = admin.get(f"{base}/admin/simulations/simulationjob/{job_id}/change/", timeout=10)
        assert detail.status_code == 200 and "A-1" in detail.text and "completed" in detail.text

        assert http.get(f"{base}/schema", timeout=10).status_code == 200
        assert (
            "montecarlo_jobs_created_total" in requests.get(f"http://127.0.0.1:{web_metrics}/metrics", timeout=10).text
        )
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 404  # not through the proxy
        worker = requests.get(f"http://127.0.0.1:{worker_metrics}/metrics", timeout=10).text
        assert "montecarlo_jobs_finished_total" in worker
        # one prefork child, of the one worker that serves both queues, and it beats
        assert re.search(r'^montecarlo_worker_processes\{queues="maintenance,simulations"\} 1\.0$', worker, re.M), (
            worker
        )
        assert re.search(
            r'^montecarlo_worker_up\{queues="maintenance,simulations",worker="local@.+"\} 1\.0$', worker, re.M
        )
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            rest = proc.communicate(timeout=90)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            rest = proc.communicate()[0]
        out.append(rest)
    assert proc.returncode == 130, "".join(out)
    assert "stopped" in rest
    for port in (web, gunicorn, web_metrics, core, worker_metrics, bridge_metrics):
        assert not listening(port), port
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"--port {core}" not in ps and "-n local@" not in ps
