"""The API's new jobs pushed to the workers several per message (``SIMULATION_API_PULL=false``,
simulations.services.dispatch): real Redis as the broker, real gunicorn for a web process
that stops or dies. The pull model's tests are in test_pull.py."""

from __future__ import annotations

import signal
import time

import psutil
import pytest
import requests
from django.test import override_settings

from montecarlo.celery import app as celery_app
from simulations import metrics, services
from simulations.models import JobStatus, SimulationJob
from simulations.services.dispatch import Dispatcher, send_or_leave_for_sweep
from tests import factories
from tests.broker import queued_messages

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit sends for real


@pytest.fixture(autouse=True)
def _pushed(settings):
    settings.SIMULATION_API_PULL = False


def _post(api, assessment: str) -> str:
    r = api.post(
        "/simulations",
        {"assessmentId": assessment, "trades": factories.trades(), "config": factories.config()},
        format="json",
    )
    assert r.status_code == 202, r.content
    return r.json()["jobId"]


def _wait_for_messages(after: int, ids: int, timeout: float = 5.0) -> list[list[str]]:
    """The messages after the first ``after``, once they carry ``ids`` jobs (no flush: read only)."""
    deadline = time.monotonic() + timeout
    while sum(len(m) for m in queued_messages()[after:]) < ids and time.monotonic() < deadline:
        time.sleep(0.02)
    return queued_messages()[after:]


def test_jobs_posted_one_per_request_within_the_window_go_out_in_one_message():
    api, before = factories.api_client(), len(queued_messages())
    with override_settings(SIMULATION_DISPATCH_WINDOW_MS=1_500):
        started = time.monotonic()
        ids = [_post(api, f"DISP-{i}") for i in range(5)]
        if time.monotonic() - started < 1.0:  # else the window may have passed meanwhile
            assert len(queued_messages()) == before, "sent before the window passed"
        assert _wait_for_messages(before, 5) == [ids]


def test_the_window_sends_without_a_flush_and_a_window_of_0_sends_a_message_per_request():
    api, before = factories.api_client(), len(queued_messages())
    with override_settings(SIMULATION_DISPATCH_WINDOW_MS=0):
        ids = [_post(api, f"DISP-Z{i}") for i in range(3)]
        assert queued_messages()[before:] == [[i] for i in ids]  # sent in the request, one each
    with override_settings(SIMULATION_DISPATCH_WINDOW_MS=50):
        late = [_post(api, "DISP-W1"), _post(api, "DISP-W2")]
        assert [i for m in _wait_for_messages(before + 3, 2) for i in m] == late


def _unsent(assessment: str) -> SimulationJob:
    return services.create_job(assessment_id=assessment, trades=factories.trades(), enqueue=False)


def _point_broker(url: str | None) -> None:
    """Publish through ``url`` (None: the broker URL again); the pools are rebuilt lazily."""
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@override_settings(SIMULATION_TASK_BATCH=16)
def test_more_jobs_than_a_message_holds_go_in_several():
    dispatcher, before = Dispatcher(window_ms=5_000), len(queued_messages())
    jobs = [_unsent(f"DISP-M{i}") for i in range(40)]
    for job in jobs:
        dispatcher.submit([job.id])
    assert dispatcher.flush()
    sizes = [len(m) for m in queued_messages()[before:]]
    assert sizes == [16, 16, 8]
    assert [i for m in queued_messages()[before:] for i in m] == [str(j.id) for j in jobs]


def test_a_refusing_broker_leaves_the_jobs_for_the_sweep_and_the_thread_sends_what_follows():
    refused, before = metrics.ENQUEUE_FAILURES._value.get(), len(queued_messages())
    dispatcher = Dispatcher(window_ms=20)
    first = _unsent("DISP-R1")
    _point_broker("redis://127.0.0.1:1/0")  # nothing listens there: a real refused connection
    try:
        dispatcher.submit([first.id])
        assert dispatcher.flush()
    finally:
        _point_broker(None)
    assert metrics.ENQUEUE_FAILURES._value.get() - refused == 1
    assert SimulationJob.objects.get(pk=first.id).status == JobStatus.PENDING
    assert len(queued_messages()) == before
    second = _unsent("DISP-R2")
    dispatcher.submit([second.id])
    assert dispatcher.flush()
    assert queued_messages()[before:] == [[str(second.id)]]
    assert services.reenqueue_stale_pending(older_than_seconds=0) >= 1  # the sweep sends the refused one
    assert str(first.id) in [i for m in queued_messages()[before:] for i in m]


def test_an_error_in_a_send_is_logged_and_the_thread_goes_on(caplog):
    calls: list[list[str]] = []

    def send(job_ids):
        calls.append([str(j) for j in job_ids])
        if len(calls) == 1:
            raise RuntimeError("boom")
        send_or_leave_for_sweep(job_ids)

    dispatcher, before = Dispatcher(window_ms=10, send=send), len(queued_messages())
    dispatcher.submit(["00000000-0000-0000-0000-000000000001"])
    assert dispatcher.flush()
    dispatcher.submit(["00000000-0000-0000-0000-000000000002"])
    assert dispatcher.flush()
    assert calls == [["00000000-0000-0000-0000-000000000001"], ["00000000-0000-0000-0000-000000000002"]]
    assert queued_messages()[before:] == [["00000000-0000-0000-0000-000000000002"]]
    assert "1 new job(s) not sent, left pending for the sweep" in caplog.text


def _post_over_http(base: str, assessment: str) -> str:
    r = requests.post(
        f"{base}/simulations",
        json={"assessmentId": assessment, "trades": factories.trades(), "config": factories.config()},
        headers=factories.auth_headers(),
        timeout=10,
    )
    assert r.status_code == 202, r.text
    return r.json()["jobId"]


def _kill_web(master) -> None:
    """SIGKILL a gunicorn master and its workers: no hook runs, no window is flushed."""
    for child in psutil.Process(master.pid).children(recursive=True):
        child.kill()
    master.kill()
    master.wait(30)


def test_a_web_process_that_stops_sends_what_its_window_holds(make_web):
    base, _, _ = make_web(SIMULATION_DISPATCH_WINDOW_MS="60000", SIMULATION_API_PULL="false")
    before = len(queued_messages())
    ids = [_post_over_http(base, f"DISP-STOP-{i}") for i in range(3)]
    assert len(queued_messages()) == before  # a minute's window: still held
    master = make_web.processes[-1]
    master.send_signal(signal.SIGTERM)  # graceful: gunicorn's worker_exit hook flushes
    assert master.wait(30) == 0
    assert [i for m in queued_messages()[before:] for i in m] == ids


def test_a_web_process_killed_inside_the_window_leaves_its_jobs_to_the_sweep(make_web):
    base, _, _ = make_web(SIMULATION_DISPATCH_WINDOW_MS="60000", SIMULATION_API_PULL="false")
    before = len(queued_messages())
    job_id = _post_over_http(base, "DISP-KILL-1")
    _kill_web(make_web.processes[-1])
    assert len(queued_messages()) == before  # the window died with the process
    assert SimulationJob.objects.get(pk=job_id).status == JobStatus.PENDING
    assert services.reenqueue_stale_pending(older_than_seconds=0) >= 1
    assert job_id in [i for m in queued_messages()[before:] for i in m]
