"""The web process as it is deployed: real gunicorn (deploy/gunicorn.conf.py) behind the
real nginx with the chart's configuration (deploy/nginx.sh), on the test PostgreSQL.

Slow clients on loopback trickle their headers and bodies: straight to gunicorn a
handful of them hold all its threads and /health stops answering (the control, which
shows the test can fail); through nginx /health and other clients stay fast. Metrics
are on gunicorn's own port, summed over its workers, and never through the proxy.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from simulations.services import access
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()}")


@dataclass
class Web:
    proxy: int  # nginx
    gunicorn: int
    metrics: int

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}{path}"


@pytest.fixture(scope="module")
def web(worker_env, tmp_path_factory) -> Iterator[Web]:
    web = Web(proxy=free_port(), gunicorn=free_port(), metrics=free_port())
    tmp = tmp_path_factory.mktemp("web")
    env = dict(
        worker_env,
        WEB_BIND=f"127.0.0.1:{web.gunicorn}",
        WEB_METRICS_PORT=str(web.metrics),
        # few threads, as in a small pod: what a handful of slow clients can exhaust
        WEB_CONCURRENCY="1",
        WEB_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="false",
    )
    (tmp / "metrics").mkdir()
    procs = []
    for name, cmd in [
        ("gunicorn", [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "montecarlo.wsgi"]),
        ("nginx", ["bash", "deploy/nginx.sh", "run", str(web.proxy), f"127.0.0.1:{web.gunicorn}", str(tmp / "nginx")]),
    ]:
        log = tmp / f"{name}.log"
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        port = web.gunicorn if name == "gunicorn" else web.proxy
        wait_until_up(web.url(port, "/health"), proc, log)
    try:
        yield web
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


class SlowClients:
    """``n`` connections that send a request a byte at a time: half of them their
    headers (a slowloris), half a POST body they said was 100 kB."""

    def __init__(self, port: int, n: int):
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                s.sendall(
                    b"POST /simulations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n{"
                )
            else:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.socks.append(s)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(0.5):
            for s in self.socks:
                with contextlib.suppress(OSError):  # nginx gave up on a slowloris: fine
                    s.send(b" ")

    def __enter__(self) -> SlowClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def health_times(url: str, n: int = 6, timeout: float = 3.0) -> list[float | None]:
    """Seconds each of ``n`` /health calls took; ``None`` for one that timed out."""
    times: list[float | None] = []
    for _ in range(n):
        start = time.monotonic()
        try:
            ok = requests.get(url, timeout=timeout).status_code == 200
            times.append(time.monotonic() - start if ok else None)
        except requests.RequestException:
            times.append(None)
        time.sleep(0.3)
    return times


def test_slow_clients_stall_bare_gunicorn_but_not_the_proxied_service(web):
    with SlowClients(web.gunicorn, 12):
        time.sleep(1)
        bare = health_times(web.url(web.gunicorn, "/health"), n=3)
    assert None in bare, bare  # the control: without the proxy the threads are all held

    with SlowClients(web.proxy, 60):
        time.sleep(1)
        proxied = health_times(web.url(web.proxy, "/health"))
    assert None not in proxied and max(proxied) < 1.0, proxied


@pytest.mark.django_db(transaction=True)
def test_other_clients_work_through_the_proxy_while_slow_ones_trickle(web):
    client = access.create_client(name="web-test", scopes=access.ALL_SCOPES)
    _, key = access.issue_key(client=client)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    body = {"assessmentId": "WEB-1", "trades": [{"pnl": 10.0}, {"pnl": -4.0}], "config": {"paths": 100}}
    with SlowClients(web.proxy, 40):
        time.sleep(1)
        start = time.monotonic()
        plain = requests.post(web.url(web.proxy, "/simulations"), json=body, headers=headers, timeout=5)
        packed = requests.post(
            web.url(web.proxy, "/simulations"),
            data=gzip.compress(json.dumps({**body, "assessmentId": "WEB-2"}).encode()),
            headers={**headers, "Content-Encoding": "gzip"},
            timeout=5,
        )
        elapsed = time.monotonic() - start
    assert plain.status_code == 202 and packed.status_code == 202, (plain.text, packed.text)
    assert elapsed < 3.0
    listed = requests.get(web.url(web.proxy, "/simulations"), headers=headers, timeout=5).json()
    assert {j["assessmentId"] for j in listed["jobs"]} == {"WEB-1", "WEB-2"}

    # metrics: on gunicorn's own port, every worker's summed; not through the proxy
    metrics = requests.get(web.url(web.metrics, "/metrics"), timeout=5).text
    created = [line for line in metrics.splitlines() if line.startswith('montecarlo_jobs_created_total{trigger="api"}')]
    assert created and float(created[0].split()[-1]) >= 2, created
    posts = 'montecarlo_http_requests_total{method="POST",route="simulations",status="202"}'
    assert any(line.startswith(posts) and float(line.split()[-1]) >= 2 for line in metrics.splitlines()), posts
    assert "montecarlo_build_info{" in metrics
    hidden = requests.get(web.url(web.proxy, "/metrics"), headers=headers, timeout=5)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"


def test_the_proxy_answers_in_json_for_a_body_over_the_limit_and_a_probe_with_any_host(web):
    too_big = requests.post(
        web.url(web.proxy, "/simulations"),
        data=b"x" * (64 * 2**20 + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert too_big.status_code == 413 and too_big.headers["Content-Type"] == "application/json"
    assert "API_MAX_BODY_BYTES" in too_big.json()["detail"]
    probe = requests.get(web.url(web.proxy, "/health"), headers={"Host": "10.1.2.3:8000"}, timeout=5)
    assert probe.status_code == 200
    refused = requests.get(web.url(web.proxy, "/simulations"), headers={"Host": "evil.example"}, timeout=5)
    assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
