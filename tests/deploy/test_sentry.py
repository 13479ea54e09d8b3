"""Error tracking is optional and real: with ``SENTRY_DSN`` set, sentry-sdk's Django and
Celery integrations report a failed request and a failed task, tagged with the request
id, to the DSN's server (here a local stand-in that speaks Sentry's envelope endpoint:
the one part we cannot run); without it, sentry-sdk is never even imported."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A request that fails inside the app and a task that fails inside the worker's tracer.
SCRIPT = """
import sys
import django
django.setup()
from unittest import mock
import sentry_sdk
from django.test import Client
from montecarlo.celery import app
from workers import tasks

def broken(*args, **kwargs):
    raise RuntimeError("{what} broke")

with mock.patch("montecarlo.health.HealthApi.get", broken):
    answer = Client(raise_request_exception=False).get("/health", HTTP_X_REQUEST_ID="sentry-req-1")
    assert answer.status_code == 500, answer.status_code
with mock.patch("simulations.services.requeue_jobs_of_dead_workers", broken):
    tasks.sweep_stale_jobs.apply()
sentry_sdk.flush(10)
print("sentry_sdk" in sys.modules)
"""


class Envelopes(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        for line in body.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "exception" in item:
                Envelopes.received.append({"path": self.path, **item})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def run(env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(what=what)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "montecarlo.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_a_dsn_failed_requests_and_tasks_reach_sentry_tagged_with_their_request_id():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Envelopes.received.clear()
    try:
        done = run({"SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/42"}, "with-dsn")
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
    assert {e["exception"]["values"][-1]["value"] for e in Envelopes.received} == {"with-dsn broke"}
    by_mechanism = {e["exception"]["values"][-1]["mechanism"]["type"]: e for e in Envelopes.received}
    # the request's error is logged by the API's error handler (which answers the 500):
    # it reaches Sentry through the logging integration, tagged with the request's id
    request = by_mechanism["logging"]
    assert request["tags"]["request_id"] == "sentry-req-1" and request["logger"] == "simulations.api.errors"
    # the task's through the Celery integration, with the ids its run was given
    task = by_mechanism["celery"]
    assert task["tags"]["celery_task_id"] and len(task["tags"]["request_id"]) == 32
    for event in (request, task):
        assert event["release"].startswith("montecarlo@") and event["environment"] == "production"
        assert {"django", "celery"} <= set(event["sdk"]["integrations"])
    assert all(e["path"] == "/api/42/envelope/" for e in Envelopes.received)


def test_without_a_dsn_nothing_is_imported():
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, sys; django.setup(); import montecarlo.urls, workers.tasks, workers.signals;"
            " print('sentry_sdk' in sys.modules)",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "montecarlo.settings", "SENTRY_DSN": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"
