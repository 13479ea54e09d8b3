"""Bad input is a 4xx that says what is wrong, never a 500: every class that used to
reach the database or Python's recursion limit, through Django's real stack on the real
PostgreSQL (whose JSON refuses what SQLite would take)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from simulations.models import SimulationJob
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return factories.api_client()


def post_raw(api, path, body: str, **headers):
    return api.generic("POST", path, body, content_type="application/json", **headers)


def fields_of(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    return response.json().get("fields", {})


@pytest.mark.parametrize(
    "body,field",
    [
        ({"assessmentId": "A", "trades": [{"pnl": 10**400}]}, "trades[0].pnl"),
        ({"assessmentId": "A", "trades": [10**400]}, "trades[0]"),
        ({"assessmentId": "A", "config": {"startingBalance": 10**400}}, "config.startingBalance"),
        ({"assessmentId": "A", "config": {"rules": {"maxDrawdown": -(10**400)}}}, "config.rules.maxDrawdown"),
        ({"assessmentId": "A", "trades": [{"pnl": 1, "note": "a\u0000b"}]}, "trades[0].note"),
        ({"assessmentId": "A", "trades": [{"pnl": 1, "no\u0000te": "x"}]}, "trades[0]"),
        ({"assessmentId": "A", "config": {"method": "block\u0000"}}, "config.method"),
        ({"assessmentId": "A", "trade": [1.0, 2.0]}, "trade"),
        ({"assessmentId": "A", "trades": [1.0], "colour": "red"}, "colour"),
    ],
)
def test_each_class_of_bad_input_is_a_400_naming_the_field(api, body, field):
    response = post_raw(api, "/simulations", json.dumps(body))
    assert response.status_code == 400
    assert field in fields_of(response), response.json()
    assert not SimulationJob.objects.exists()


def test_json_nested_too_deep_is_a_400(api):
    for depth in (40, 5_000, 200_000):
        body = '{"assessmentId": "A", "config": {"x": ' + "[" * depth + "]" * depth + "}}"
        response = post_raw(api, "/simulations", body)
        assert response.status_code == 400 and "nested more than 32 levels" in response.json()["detail"]


def test_an_idempotency_key_too_long_is_a_400_and_one_that_fits_works(api):
    body = json.dumps({"assessmentId": "A", "trades": factories.trades(5)})
    long_key = post_raw(api, "/simulations", body, HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert "Idempotency-Key" in fields_of(long_key)
    first = post_raw(api, "/simulations", body, HTTP_IDEMPOTENCY_KEY="k" * 200)
    again = post_raw(api, "/simulations", body, HTTP_IDEMPOTENCY_KEY="k" * 200)
    assert first.status_code == again.status_code == 202 and first.json()["jobId"] == again.json()["jobId"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=50_000)
def test_a_body_over_the_limit_is_a_413_in_json_naming_the_limit(api):
    body = json.dumps({"assessmentId": "A", "trades": [{"pnl": 1.5, "closedAt": "2026-06-01T14:30:00Z"}] * 2_000})
    assert len(body) > 50_000
    response = post_raw(api, "/simulations", body)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert "50,000 bytes" in response.json()["detail"] and "API_MAX_BODY_BYTES" in response.json()["detail"]
    batch = post_raw(api, "/simulations/batch", json.dumps({"jobs": [json.loads(body)]}))
    assert batch.status_code == 413


def test_the_default_body_limit_takes_the_largest_history(api, settings):
    """SIMULATION_MAX_TRADES dated trades fit in API_MAX_BODY_BYTES."""
    trade = json.dumps({"pnl": -1234.56, "closedAt": "2026-06-01T14:30:00.000Z"}) + ", "
    assert settings.SIMULATION_MAX_TRADES * len(trade) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_the_batch_honours_an_idempotency_key(api):
    jobs = {"jobs": [{"assessmentId": f"IB-{i}", "trades": factories.trades(5, seed=i)} for i in range(3)]}
    first = post_raw(api, "/simulations/batch", json.dumps(jobs), HTTP_IDEMPOTENCY_KEY="batch-1")
    again = post_raw(api, "/simulations/batch", json.dumps(jobs), HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 202
    assert [j["jobId"] for j in first.json()["jobs"]] == [j["jobId"] for j in again.json()["jobs"]]
    assert SimulationJob.objects.count() == 3
    other = {"jobs": jobs["jobs"][:2]}  # the same key for another batch
    assert post_raw(api, "/simulations/batch", json.dumps(other), HTTP_IDEMPOTENCY_KEY="batch-1").status_code == 409
    longer = {"jobs": [*jobs["jobs"], {"assessmentId": "IB-9"}]}
    assert post_raw(api, "/simulations/batch", json.dumps(longer), HTTP_IDEMPOTENCY_KEY="batch-1").status_code == 409
    assert SimulationJob.objects.count() == 3
    longest = post_raw(api, "/simulations/batch", json.dumps(jobs), HTTP_IDEMPOTENCY_KEY="b" * 200)
    assert longest.status_code == 202, longest.content  # the documented 200 characters, for a batch too
    too_long = post_raw(api, "/simulations/batch", json.dumps(jobs), HTTP_IDEMPOTENCY_KEY="b" * 201)
    assert "Idempotency-Key" in fields_of(too_long)
    unknown = post_raw(api, "/simulations/batch", json.dumps({"jobs": [{"assessmentId": "X", "trade": []}]}))
    assert "jobs[0].trade" in fields_of(unknown)


@pytest.mark.parametrize(
    "config,field",
    [
        ({"paths": 5_000_000, "horizon": 4_001}, "config.paths"),  # over SIMULATION_MAX_SAMPLES
        ({"method": "permutation", "horizon": 50}, "config.horizon"),  # longer than the history
        ({"rules": {"dailyLossLimit": 100}}, "config.rules.dailyLossLimit"),  # undated trades, no tradesPerDay
    ],
)
def test_what_the_worker_would_refuse_is_refused_at_the_api(api, config, field):
    body = {"assessmentId": "A", "trades": [float(i % 7 - 3) for i in range(40)], "config": config}
    response = post_raw(api, "/simulations", json.dumps(body))
    assert field in fields_of(response), response.json()
    assert not SimulationJob.objects.exists()


def test_a_gzip_body_is_accepted_and_its_expansion_bounded(api, settings):
    body = {"assessmentId": "GZ-1", "trades": factories.trades(100, dated=True), "config": {"paths": 100}}
    packed = gzip.compress(json.dumps(body).encode())
    created = post_raw(api, "/simulations", packed, HTTP_CONTENT_ENCODING="gzip")
    assert created.status_code == 202, created.content
    job = SimulationJob.objects.get(pk=created.json()["jobId"])
    assert job.assessment_id == "GZ-1" and len(job.input_data["trades"]) == 100
    batch = post_raw(
        api, "/simulations/batch", gzip.compress(json.dumps({"jobs": [body]}).encode()), HTTP_CONTENT_ENCODING="GZIP"
    )
    assert batch.status_code == 202, batch.content
    # a small body that expands beyond the limit (a "zip bomb") is a 413, not memory
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    bomb = gzip.compress(b'{"assessmentId": "' + b"A" * 5_000_000 + b'"}')
    assert len(bomb) < 10_000
    refused = post_raw(api, "/simulations", bomb, HTTP_CONTENT_ENCODING="gzip")
    assert refused.status_code == 413 and "API_MAX_BODY_BYTES" in refused.json()["detail"]


@pytest.mark.parametrize(
    "raw, encoding, status",
    [
        (b"not gzip at all", "gzip", 400),
        (gzip.compress(b'{"assessmentId": "A"}')[:-6], "gzip", 400),  # truncated
        (gzip.compress(b"{"), "gzip", 400),  # gzip of bad JSON
        (b'{"assessmentId": "A"}', "br", 415),
    ],
)
def test_a_bad_compressed_body_is_a_4xx(api, raw, encoding, status):
    response = post_raw(api, "/simulations", raw, HTTP_CONTENT_ENCODING=encoding)
    assert response.status_code == status, response.content
    assert response.json()["error"] in ("invalid", "unsupported_media_type")
    assert not SimulationJob.objects.exists()


@pytest.mark.slow
def test_the_largest_history_is_accepted_in_a_gzip_request_of_reasonable_size(api, settings):
    """SIMULATION_MAX_TRADES dated trades (random amounts, times a few minutes apart)
    compress to under a sixth of API_MAX_BODY_BYTES, and the API takes them."""
    rng, at = random.Random(3), dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    trades = []
    for _ in range(settings.SIMULATION_MAX_TRADES):
        at += dt.timedelta(seconds=rng.randint(30, 900))
        trades.append({"pnl": round(rng.gauss(20, 150), 2), "closedAt": at.isoformat().replace("+00:00", "Z")})
    raw = json.dumps({"assessmentId": "BIG", "trades": trades, "config": {"paths": 1000}}).encode()
    packed = gzip.compress(raw, compresslevel=6)
    assert len(raw) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(raw) * 2
    assert len(packed) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 6, (len(raw), len(packed))
    created = post_raw(api, "/simulations", packed, HTTP_CONTENT_ENCODING="gzip")
    assert created.status_code == 202, created.content[:300]
