"""The Core Service client against a local HTTP server speaking its API."""

from __future__ import annotations

import time

import pytest

from simulations.clients import CoreServiceClient, CoreServiceError
from tests import factories
from tests.fakes.core_service import FakeCoreService


@pytest.fixture
def fake():
    server = FakeCoreService().start()
    yield server
    server.stop()


def client(fake, **kw):
    kw.setdefault("backoff", 0.01)
    return CoreServiceClient(fake.url, **kw)


def test_trade_history_by_assessment_and_by_account(fake):
    fake.assessment_trades["A 1"] = [{"pnl": 5}, {"pnl": -2}]
    fake.account_trades["FA-1"] = factories.trades(8, dated=True)
    assert client(fake).trade_history(assessment_id="A 1").values.tolist() == [5.0, -2.0]
    history = client(fake).trade_history(funded_account_id="FA-1", assessment_id="A 1")
    assert len(history) == 8 and history.days is not None and history.mae is None
    fake.account_trades["FA-2"] = [{"pnl": 5, "mae": 12.5}, {"pnl": -2}]  # the excursion, where the platform has it
    assert client(fake).trade_history(funded_account_id="FA-2").mae.tolist() == [12.5, 0.0]


def test_transient_errors_are_retried(fake):
    fake.assessment_trades["A"] = [{"pnl": 1}]
    fake.faults["/api/assessments/A/trades"] = [503, 502]
    assert len(client(fake, retries=3).trade_history(assessment_id="A")) == 1
    assert fake.requests.count("/api/assessments/A/trades") == 3


def test_retries_are_bounded(fake):
    fake.assessment_trades["A"] = [{"pnl": 1}]
    fake.faults["/api/assessments/A/trades"] = [503] * 10
    with pytest.raises(CoreServiceError, match="HTTP 503"):
        client(fake, retries=2).trade_history(assessment_id="A")
    assert fake.requests.count("/api/assessments/A/trades") == 3


def test_a_slow_answer_times_out(fake):
    fake.assessment_trades["A"] = [{"pnl": 1}]
    fake.faults["/api/assessments/A/trades"] = [("sleep", 2.0)] * 3
    started = time.monotonic()
    with pytest.raises(CoreServiceError, match="unreachable"):
        client(fake, read_timeout=0.3, retries=1).trade_history(assessment_id="A")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "payload",
    [
        [{"pnl": "NaN"}],
        [{"pnl": "abc"}],
        [],
        [{"nothing": 1}],
    ],
)
def test_unusable_histories_are_errors(fake, payload):
    fake.assessment_trades["A"] = payload
    with pytest.raises(CoreServiceError):
        client(fake).trade_history(assessment_id="A").validate()


def test_active_funded_accounts_follow_pagination(fake):
    fake.active_accounts = [f"FA-{i}" for i in range(5)]
    fake.account_rule_sets["FA-3"] = "100k-2phase"
    accounts = list(client(fake).active_funded_accounts())
    assert [a.id for a in accounts] == [f"FA-{i}" for i in range(5)]
    assert [a.rule_set for a in accounts] == [None, None, None, "100k-2phase", None]
    assert fake.requests.count("/api/funded-accounts") == 3


def test_a_process_keeps_its_client_and_its_connection(core_service, settings):
    """Jobs fetch histories through ``core_service_client()``: one client per process,
    reused by every thread, so consecutive fetches share one keep-alive connection."""
    import threading

    from simulations.clients import core_service_client

    for i in range(5):
        core_service.assessment_trades[f"A-{i}"] = [{"pnl": i + 1.0}]
    first = core_service_client()
    for i in range(5):
        assert core_service_client().trade_history(assessment_id=f"A-{i}").values.tolist() == [i + 1.0]
    assert core_service_client() is first
    assert first.pool.connection_from_url(core_service.url).num_connections == 1

    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(core_service_client()))
    thread.start()
    thread.join()
    assert elsewhere[0] is first  # urllib3's pool is thread-safe

    settings.CORE_SERVICE_READ_TIMEOUT = 7.0  # a change of settings builds a new client
    assert (
        core_service_client() is not first
        and core_service_client().pool.connection_pool_kw["timeout"].read_timeout == 7.0
    )


@pytest.mark.parametrize("account", ["..", ".", "a/../b", "x?y=1", "#frag", "%2E%2E", "A 1"])
def test_an_id_is_one_path_segment_whatever_it_holds(fake, account):
    """No id reaches another resource: dot segments and reserved characters are escaped."""
    fake.account_trades[account] = [{"pnl": 3}, {"pnl": -1}]
    assert client(fake).trade_history(funded_account_id=account).values.tolist() == [3.0, -1.0]
    (path,) = fake.requests
    assert path.startswith("/api/funded-accounts/") and path.endswith("/trades") and path.count("/") == 4, path
    assert "/../" not in path and "/./" not in path
