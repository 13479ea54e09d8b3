"""Deployment files stay in step with the code: metric names, processes, settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from simulations import metrics

ROOT = Path(__file__).resolve().parents[2]


def exported_series() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Histogram):
            names |= {value._name + s for s in ("_bucket", "_sum", "_count")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    # read from elsewhere at each scrape (the broker, the keys Redis, the heartbeats)
    names |= {make(dict).name for make in (metrics.queue_lengths, metrics.last_successes)}
    for family in metrics.WorkerHealth("w", "q", dict).describe():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


# a series name in PromQL: ours (montecarlo_), the Redis exporter's (redis_), or a
# recorded one (level:metric:operations), with its label selector when it has one
SERIES = re.compile(r"(?<![\w:])((?:[a-z]+:)?(?:montecarlo|redis)_[a-z0-9_]+(?::[a-z0-9]+)?)(\{[^}]*\})?")


def series_in(text: str) -> list[tuple[str, str]]:
    return SERIES.findall(text)


def recorded_series() -> set[str]:
    groups = yaml.safe_load((ROOT / "deploy/prometheus/recording.yml").read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"]}


def referenced(text: str) -> set[str]:
    """Our own and recorded series a text names (the exporter's are checked on a real scrape)."""
    return {name for name, _ in series_in(text) if not name.startswith("redis_")}


def known_series() -> set[str]:
    return exported_series() | recorded_series()


def test_alert_and_recording_rules_use_metrics_that_exist():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 8 and all(r.get("annotations", {}).get("summary") for g in rules["groups"] for r in g["rules"])
    recording = yaml.safe_load((ROOT / "deploy/prometheus/recording.yml").read_text())
    exprs += [r["expr"] for g in recording["groups"] for r in g["rules"]]
    missing = referenced("\n".join(exprs)) - known_series()
    assert not missing, missing


def test_the_dashboard_uses_metrics_that_exist():
    dash = json.loads((ROOT / "deploy/grafana/dashboards/montecarlo.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    missing = referenced("\n".join(exprs)) - known_series()
    assert not missing, missing
    assert len(dash["panels"]) >= 10


def test_every_panel_has_its_datasource_one_unit_and_the_namespace_and_queue_variables():
    """The data source, namespace and queue are variables; each panel draws one unit
    (no overrides that would put a second unit on its axis), and every series selector
    in it is filtered by the namespace (and the queue, where there is one)."""
    dash = json.loads((ROOT / "deploy/grafana/dashboards/montecarlo.json").read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "queue"}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "queue"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
        assert referenced(variables[name]["definition"]) <= exported_series()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in {"ops", "reqps", "s", "short", "bytes"}, panel["title"]
        assert not any(
            prop["id"] == "unit" for o in panel["fieldConfig"].get("overrides", []) for prop in o["properties"]
        ), panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
            selectors = [sel for _, sel in series_in(target["expr"])]
            assert selectors and all('namespace=~"$namespace"' in sel for sel in selectors), target["expr"]
            if "montecarlo_queue_length" in target["expr"]:
                assert 'queue=~"$queue"' in target["expr"]


def test_compose_and_helm_run_every_process_of_the_architecture():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {name: " ".join(svc.get("command", [])) for name, svc in compose.items()}
    assert commands["web"].startswith("gunicorn") and "montecarlo.wsgi" in commands["web"]
    assert "worker -Q simulations" in commands["worker"]
    assert "beat -S django_celery_beat.schedulers:DatabaseScheduler" in commands["beat"]
    assert commands["bridge"] == "python manage.py kafka_bridge"
    assert {"postgres", "broker", "keys", "kafka", "prometheus", "grafana"} <= set(compose)
    templates = "\n".join(p.read_text() for p in (ROOT / "helm/montecarlo/templates").glob("*.yaml"))
    for needle in ('"gunicorn"', '"worker"', '"beat"', '"kafka_bridge"', "worker_alive", "type: Recreate"):
        assert needle in templates
    values = yaml.safe_load((ROOT / "helm/montecarlo/values.yaml").read_text())
    assert values["worker"]["terminationGracePeriodSeconds"] > 60


def compose_schema() -> dict:
    import subprocess

    done = subprocess.run(["bash", str(ROOT / "deploy/compose-schema.sh")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(Path(done.stdout.strip()).read_text())


def test_compose_is_valid_by_the_compose_specification_and_starts_in_order():
    import copy

    import jsonschema

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # draft 7, as the schema says ("$schema" names it without the "#" jsonschema looks for)
    validator = jsonschema.Draft7Validator(compose_schema())
    validator.validate(compose)
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert not validator.is_valid(broken), "the schema took a condition Compose does not know"

    services = compose["services"]
    app = {"web", "worker", "maintenance", "beat", "bridge"}
    for name in app:  # never on an old schema
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert "migrate" not in services["migrate"]["depends_on"] and services["migrate"]["restart"] == "no"
    for name, service in services.items():
        if name != "migrate":
            assert service.get("restart") == "unless-stopped", name
    servers = {
        "proxy",
        "web",
        "worker",
        "maintenance",
        "bridge",
        "postgres",
        "broker",
        "keys",
        "kafka",
        "prometheus",
        "grafana",
    }
    for name in servers:
        assert services[name].get("healthcheck", {}).get("test"), name
    # what the app waits for is healthy, not merely started
    assert {c["condition"] for n, c in services["worker"]["depends_on"].items() if n != "migrate"} == {
        "service_healthy"
    }
