"""/health, /ready (real database and broker), /metrics, and the OpenAPI contract."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rest_framework.test import APIClient

from simulations import services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return factories.api_client()


def test_health(api):
    response = api.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_everything_is_up(api):
    response = api.get("/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"] == "ok"


def test_ready_names_the_broker_when_it_is_down(api, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = api.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"] and body["checks"]["database"] == "ok"


def test_ready_names_kafka_when_configured_and_down(api, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    response = api.get("/ready")
    assert response.status_code == 503
    assert response.json()["down"] == ["kafka"]


def test_metrics_are_not_on_the_api_port(api):
    """They are on WEB_METRICS_PORT (tests/deploy/test_web_server.py reads them there)."""
    response = api.get("/metrics")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def openapi() -> dict[str, Any]:
    response = factories.api_client("read").get("/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def json_schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """An OpenAPI 3.0 component as JSON Schema: ``nullable`` becomes a null type."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: convert(v) for k, v in node.items()}
            if node.pop("nullable", False):
                if "type" in node:
                    node["type"] = [node["type"], "null"]
                else:
                    node = {"anyOf": [node, {"type": "null"}]}
            if "$ref" in node:
                node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/$defs/")
            return node
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    defs = convert(copy.deepcopy(spec["components"]["schemas"]))
    return {"$ref": f"#/$defs/{name}", "$defs": defs}


def test_the_schema_describes_every_endpoint():
    spec = openapi()
    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/simulations"])
    assert "get" in paths["/simulations/{job_id}"]
    assert "202" in paths["/simulations/batch"]["post"]["responses"]
    assert "/health" in paths and "/ready" in paths
    assert "202" in paths["/simulations"]["post"]["responses"]
    params = {p["name"] for p in paths["/simulations"]["get"]["parameters"]}
    assert {"assessmentId", "fundedAccountId", "status", "page", "pageSize"} <= params
    body = spec["components"]["schemas"]["SimulationCreateInputRequest"]["properties"]
    assert {"assessmentId", "fundedAccountId", "trades", "config"} <= set(body)


def test_responses_match_the_schema(api):
    spec = openapi()
    created = api.post(
        "/simulations",
        {"assessmentId": "A-s", "trades": factories.trades(), "config": factories.config()},
        format="json",
    ).json()
    jsonschema.validate(created, json_schema(spec, "JobCreatedOutput"))
    job_id = created["jobId"]
    services.run_job(job_id=job_id, worker_id="test:1")
    detail = api.get(f"/simulations/{job_id}").json()
    jsonschema.validate(detail, json_schema(spec, "JobDetailOutput"))
    page = api.get("/simulations").json()
    jsonschema.validate(page, json_schema(spec, "JobPageOutput"))
    batch = api.post(
        "/simulations/batch", {"jobs": [{"assessmentId": "A-b1"}, {"fundedAccountId": "F-b2"}]}, format="json"
    ).json()
    jsonschema.validate(batch, json_schema(spec, "JobBatchCreatedOutput"))
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        jsonschema.validate({"jobId": job_id}, json_schema(spec, "JobCreatedOutput"))


def test_the_config_schema_is_the_engines_config_with_its_bounds():
    """One definition: the schema lists exactly the engine's settings and rules, and
    states the bounds the engine enforces."""
    from dataclasses import fields

    from simulations.engine import Rules, SimulationConfig
    from simulations.engine.config import setting_bounds
    from simulations.services import engine_limits
    from simulations.wire import camel_name

    schemas = openapi()["components"]["schemas"]
    config = schemas["ConfigSchemaRequest"]["properties"]
    rules = schemas["RulesSchemaRequest"]["properties"]
    assert set(config) == {camel_name(f.name) for f in fields(SimulationConfig)}
    assert set(rules) == {camel_name(f.name) for f in fields(Rules)}
    for name, (low, high) in setting_bounds(engine_limits()).items():
        if name == "paths":  # an integer or "auto": the bounds are in its description
            assert f"1 to {high}" in config["paths"]["description"]
            continue
        assert (config[camel_name(name)]["minimum"], config[camel_name(name)]["maximum"]) == (low, high), name


def test_the_result_schema_is_the_engines_result():
    """One definition: every field of the engine's result, and no other, is in the schema."""
    from dataclasses import fields

    from simulations.api import serializers as s
    from simulations.engine import result as r

    pairs = [
        (r.SimulationResult, s.ResultSchema),
        (r.Distribution, s.DistributionSchema),
        (r.Probability, s.ProbabilitySchema),
        (r.EquityFan, s.EquityFanSchema),
        (r.Histogram, s.HistogramSchema),
    ]
    for dataclass, serializer in pairs:
        assert {f.name for f in fields(dataclass)} == set(serializer().fields), dataclass.__name__
    assert set(s.DistributionSchema().fields["percentiles"].fields) == {f"p{p}" for p in r.PERCENTILES}
    assert set(s.EquityFanSchema().fields["bands"].fields) == {f"p{p}" for p in r.BAND_PERCENTILES}
    job = services.create_job(assessment_id="A-r", trades=factories.trades(), config=factories.config(), enqueue=False)
    services.run_job(job_id=job.id, worker_id="test:1")
    job.refresh_from_db()
    assert set(job.result["probabilities"]) == set(s.ProbabilitiesSchema().fields)


def test_the_docs_page_is_for_read_keys_and_staff_and_its_files_are_served_here(client):
    from django.contrib.auth import get_user_model

    anonymous = client.get("/docs")
    assert anonymous.status_code == 401 and anonymous["Content-Type"].startswith("application/json")
    assert factories.api_client("submit").get("/docs").status_code == 403
    page = factories.api_client("read").get("/docs", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    staff = get_user_model().objects.create_user("docs-reader", password="pw", is_staff=True)
    client.force_login(staff)
    html = client.get("/docs").content.decode()
    assert "/schema" in html and "cdn" not in html.lower()
    bundle = next(part.split('"')[0] for part in html.split('src="')[1:] if "swagger-ui-bundle" in part)
    assert bundle.startswith("/static/") and client.get(bundle).status_code == 200
    assert client.get("/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code == 200


def test_requests_are_counted_by_route_never_by_path(api):
    from prometheus_client import REGISTRY

    def count(route: str, status: str) -> float:
        labels = {"route": route, "method": "GET", "status": status}
        return REGISTRY.get_sample_value("montecarlo_http_requests_total", labels) or 0.0

    before = count("simulation-detail", "404"), count("unmatched", "404")
    for job_id in ("8d3c5a52-0000-4000-8000-000000000001", "8d3c5a52-0000-4000-8000-000000000002"):
        assert api.get(f"/simulations/{job_id}").status_code == 404
    assert api.get("/no/such/page").status_code == 404
    assert count("simulation-detail", "404") == before[0] + 2  # one series for every job id
    assert count("unmatched", "404") == before[1] + 1
    assert (
        REGISTRY.get_sample_value(
            "montecarlo_http_request_duration_seconds_count", {"route": "simulation-detail", "method": "GET"}
        )
        >= 2
    )


def test_one_version_for_the_schema_the_build_info_and_the_chart():
    import yaml

    from simulations import __version__

    chart = yaml.safe_load((Path(__file__).resolve().parents[3] / "helm/montecarlo/Chart.yaml").read_text())
    assert chart["appVersion"] == __version__ == openapi()["info"]["version"]
    from prometheus_client import REGISTRY

    samples = [s for m in REGISTRY.collect() if m.name == "montecarlo_build_info" for s in m.samples]
    assert samples and samples[0].labels["version"] == __version__ and samples[0].value == 1


def test_a_job_with_the_firm_rules_and_excursions_over_http(api):
    """The new rules and ``mae`` go in camelCase, come back in the stored config, and the
    result names the causes and the ignored settings, all as the schema says."""
    spec = openapi()
    trades = [
        {"pnl": pnl, "mae": mae, "closedAt": f"2026-03-{1 + i // 2:02d}T1{i % 2}:00:00Z"}
        for i, (pnl, mae) in enumerate([(300, 50), (-120, 400), (-200, 700), (50, 0)] * 5)
    ]
    rules = {
        "profitTarget": 1500, "maxDrawdown": 600, "drawdownType": "trailing", "trailingBasis": "end_of_day",
        "trailingLock": 0, "minTradingDays": 3, "maxTradingDays": 8, "consistency": 0.5, "floorsInclusive": False,
    }  # fmt: skip
    config = {"paths": 2000, "seed": 3, "startingBalance": 10_000, "tradesPerDay": 4, "rules": rules}
    created = api.post("/simulations", {"assessmentId": "A-firm", "trades": trades, "config": config}, format="json")
    assert created.status_code == 202, created.json()
    job_id = created.json()["jobId"]
    services.run_job(job_id=job_id, worker_id="test:1")
    detail = api.get(f"/simulations/{job_id}").json()
    jsonschema.validate(detail, json_schema(spec, "JobDetailOutput"))
    result = detail["result"]
    assert (
        result["config"]["rules"]["trailingBasis"] == "end_of_day" and result["config"]["rules"]["minTradingDays"] == 3
    )
    assert set(result["failureCauses"]) == {"ruin", "maxDrawdown", "dailyLossLimit", "timeLimit"}
    assert result["failureCauses"]["maxDrawdown"] > 0
    assert sum(result["failureCauses"].values()) == result["probabilities"]["fail"]["count"]
    assert list(result["ignoredSettings"]) == ["tradesPerDay"]
    refused = api.post(
        "/simulations",
        {"assessmentId": "A-x", "trades": trades, "config": {"rules": {"trailingLock": 0, "maxDrawdown": 5}}},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"config.rules.trailingLock": ["applies to a trailing max_drawdown only"]}
    bad_mae = api.post("/simulations", {"assessmentId": "A-y", "trades": [{"pnl": 1, "mae": -3}]}, format="json")
    assert bad_mae.status_code == 400 and "trades[0].mae" in bad_mae.json()["fields"]


def test_a_two_phase_evaluation_over_http(api):
    spec = openapi()
    config = {
        "paths": 3000,
        "seed": 4,
        "startingBalance": 10_000,
        "phases": [
            {"rules": {"profitTarget": 800, "maxDrawdown": 1_000}},
            {"rules": {"profitTarget": 400, "maxDrawdown": 500, "minTradingDays": 3}, "startingBalance": 5_000},
        ],
    }
    created = api.post(
        "/simulations",
        {"assessmentId": "A-2p", "trades": factories.trades(120, dated=True), "config": config},
        format="json",
    )
    assert created.status_code == 202, created.json()
    services.run_job(job_id=created.json()["jobId"], worker_id="test:1")
    detail = api.get(f"/simulations/{created.json()['jobId']}").json()
    jsonschema.validate(detail, json_schema(spec, "JobDetailOutput"))
    first, second = detail["result"]["phasePass"]
    assert first["estimate"] >= second["estimate"] == detail["result"]["probabilities"]["pass"]["estimate"]
    assert detail["result"]["config"]["phases"][1]["startingBalance"] == 5_000
    refused = api.post(
        "/simulations",
        {"assessmentId": "A-2x", "config": {"phases": [{"rules": {"maxDrawdown": 5}}]}},
        format="json",
    )
    assert refused.status_code == 400 and "config.phases[0].rules.profitTarget" in refused.json()["fields"]
