"""The Helm chart, rendered by a real Helm (deploy/helm.sh builds a pinned one) and read
back as Kubernetes objects: every process of the architecture, wired to the settings and
to each other the way Kubernetes will match them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/montecarlo"
SECRETS = ["--set", "secrets.SECRET_KEY=k", "--set", "secrets.DATABASE_URL=postgres://u:p@db:5432/mc"]


@pytest.fixture(scope="module")
def helm() -> str:
    done = subprocess.run(["bash", str(ROOT / "deploy/helm.sh")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([helm, "template", "mc", str(CHART), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployment (and Job) name -> its pod template."""
    return {o["metadata"]["name"]: o["spec"]["template"] for o in objects if o["kind"] in ("Deployment", "Job")}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_chart_lints_strictly(helm):
    done = subprocess.run([helm, "lint", "--strict", str(CHART), *SECRETS], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_process_runs_with_the_settings_it_reads(helm):
    objects = render(helm, *SECRETS)
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {
        "mc-montecarlo-web",
        "mc-montecarlo-worker",
        "mc-montecarlo-maintenance",
        "mc-montecarlo-beat",
        "mc-montecarlo-bridge",
    }
    maps = by_kind(objects, "ConfigMap")
    assert set(maps) == {"mc-montecarlo-config", "mc-montecarlo-proxy"}, set(maps)
    config_name, config = "mc-montecarlo-config", maps["mc-montecarlo-config"]
    ((secret_name, secret),) = by_kind(objects, "Secret").items()
    assert secret["stringData"]["DATABASE_URL"] == "postgres://u:p@db:5432/mc"
    for name, pod in pod_specs(objects).items():
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] != "proxy"]
        sources = {next(iter(s)): s[next(iter(s))]["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": config_name, "secretRef": secret_name}, name
    # every key the chart sets is a setting the code reads (a typo would be silently ignored)
    settings = set(re.findall(r"^(?:# )?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert set(config["data"]) - settings == set()

    beat = deployments["mc-montecarlo-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    worker = deployments["mc-montecarlo-worker"]["spec"]["template"]["spec"]
    assert worker["containers"][0]["livenessProbe"]["exec"]["command"][:3] == ["python", "manage.py", "worker_alive"]
    assert "-Q" in worker["containers"][0]["command"]
    assert worker["terminationGracePeriodSeconds"] >= 60


def test_services_and_budgets_select_the_pods_they_mean(helm):
    objects = render(helm, *SECRETS)
    pods = pod_specs(objects)
    ((_, service),) = by_kind(objects, "Service").items()
    web = pods["mc-montecarlo-web"]
    assert selects(service["spec"]["selector"], web["metadata"]["labels"])
    assert not selects(service["spec"]["selector"], pods["mc-montecarlo-worker"]["metadata"]["labels"])
    port_names = {p["name"] for c in web["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for name, budget in by_kind(objects, "PodDisruptionBudget").items():
        chosen = [
            n
            for n, pod in pods.items()
            if selects(budget["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        ]
        assert chosen == [name], (name, chosen)  # each budget covers its own pods only
    for deployment in by_kind(objects, "Deployment").values():
        assert selects(
            deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
        )


def test_the_migrate_hook_finds_its_settings_already_there(helm):
    """Hooks run before the release's own objects exist: the ConfigMap and Secret the
    migrate Job reads must be hooks of the same phases with a lower weight."""
    objects = render(helm, *SECRETS)
    ((_, job),) = by_kind(objects, "Job").items()
    job_phases = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    job_weight = int(job["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
    assert {"pre-install", "pre-upgrade"} <= job_phases
    for kind in ("ConfigMap", "Secret"):
        # the proxy's ConfigMap is read by the web pods, not by the hook
        ((_, needed),) = [(n, o) for n, o in by_kind(objects, kind).items() if not n.endswith("-proxy")]
        annotations = needed["metadata"].get("annotations", {})
        assert job_phases <= set(annotations.get("helm.sh/hook", "").split(",")), kind
        assert int(annotations["helm.sh/hook-weight"]) < job_weight, kind


def test_pods_restart_when_the_settings_change(helm):
    before = pod_specs(render(helm, *SECRETS))
    after = pod_specs(render(helm, *SECRETS, "--set", "config.WORKER_HEARTBEAT_TTL=45"))
    for name in (
        "mc-montecarlo-web",
        "mc-montecarlo-worker",
        "mc-montecarlo-maintenance",
        "mc-montecarlo-beat",
        "mc-montecarlo-bridge",
    ):
        assert before[name]["metadata"]["annotations"] != after[name]["metadata"]["annotations"], name


def test_secrets_are_required_unless_an_existing_secret_is_named(helm):
    done = subprocess.run([helm, "template", "mc", str(CHART)], capture_output=True, text=True)
    assert done.returncode != 0 and "secrets.SECRET_KEY is required" in done.stderr
    objects = render(helm, "--set", "existingSecret=platform-secrets")
    assert by_kind(objects, "Secret") == {}
    for pod in pod_specs(objects).values():
        refs = [s["secretRef"]["name"] for s in pod["spec"]["containers"][0]["envFrom"] if "secretRef" in s]
        assert refs == ["platform-secrets"]


def test_pod_monitors_scrape_each_process_under_the_job_names_the_alerts_use(helm):
    assert by_kind(render(helm, *SECRETS), "PodMonitor") == {}
    objects = render(helm, *SECRETS, "--set", "metrics.podMonitor=true")
    monitors = by_kind(objects, "PodMonitor")
    pods = pod_specs(objects)
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    local_jobs = {c["job_name"] for c in prometheus["scrape_configs"]}
    alerts = (ROOT / "deploy/prometheus/alerts.yml").read_text()
    jobs = set()
    for name, monitor in monitors.items():
        if name.endswith("-redis-exporter"):
            continue  # many targets through one pod: its own test below
        selected = [
            p for p in pods.values() if selects(monitor["spec"]["selector"]["matchLabels"], p["metadata"]["labels"])
        ]
        assert len(selected) == 1, name
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {p["name"]: p["containerPort"] for c in selected[0]["spec"]["containers"] for p in c["ports"]}
        assert endpoint["port"] in ports, name
        annotations = selected[0]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports[endpoint["port"]]), name
        (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        jobs.add(job)
    assert jobs == {"montecarlo-web", "montecarlo-worker", "montecarlo-maintenance", "montecarlo-bridge"}
    assert jobs <= local_jobs
    assert set(re.findall(r'job="([a-z-]+)"', alerts)) <= jobs | {"redis-broker", "redis-keys"}


def test_the_redis_exporter_asks_about_each_redis_under_the_alerts_job_names(helm):
    """Off by default; on, one exporter pod and one PodMonitor endpoint per Redis: the
    broker (with its queue lists) and each cluster node, labelled as the shipped
    Prometheus config labels them."""
    assert not [o for o in render(helm, *SECRETS) if "redis-exporter" in o["metadata"]["name"]]
    nodes = ["redis://rc-0.rc:6379", "redis://rc-1.rc:6379"]
    objects = render(
        helm,
        *SECRETS,
        "--set",
        "metrics.podMonitor=true",
        "--set",
        "redisExporter.enabled=true",
        "--set",
        "redisExporter.broker=redis://broker:6379",
        "--set",
        "redisExporter.brokerDb=3",
        "--set",
        "redisExporter.keys={" + ",".join(nodes) + "}",
    )
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor" and o["metadata"]["name"].endswith("redis-exporter")]
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    by_job: dict[str, list[str]] = {}
    for endpoint in endpoints:
        labels = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
        assert endpoint["path"] == "/scrape" and labels["instance"] == endpoint["params"]["target"][0]
        by_job.setdefault(labels["job"], []).append(labels["instance"])
    assert by_job == {"redis-broker": ["redis://broker:6379"], "redis-keys": nodes}
    assert endpoints[0]["params"]["check-single-keys"] == ["db3=simulations,db3=maintenance"]
    shipped = {
        c["job_name"] for c in yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"]
    }
    assert set(by_job) <= shipped
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("redis-exporter")
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9121}] and container["resources"]["limits"]


def consumed_queues(command: list[str]) -> set[str]:
    return set(command[command.index("-Q") + 1].split(",")) if "-Q" in command else set()


def test_workers_consume_the_queues_the_code_names(helm):
    """Queue names come from ``CeleryQueue``: the chart's and compose's workers between
    them consume every queue the task routes send to, and no queue that does not exist."""
    from django.conf import settings

    from workers.queues import CeleryQueue

    names = {q.value for q in CeleryQueue}
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} == names
    commands = [
        c.get("command", []) for pod in pod_specs(render(helm, *SECRETS)).values() for c in pod["spec"]["containers"]
    ]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for found in (commands, [svc.get("command", []) for svc in compose.values()]):
        queues = [consumed_queues(c) for c in found if "worker" in c]
        assert queues and set().union(*queues) == names and all(q <= names for q in queues)


def test_clients_reach_the_web_pods_through_the_proxy_and_never_the_metrics_port(helm):
    objects = render(helm, *SECRETS)
    web = pod_specs(objects)["mc-montecarlo-web"]["spec"]
    containers = {c["name"]: c for c in web["containers"]}
    assert set(containers) == {"web", "proxy"}
    ((_, service),) = by_kind(objects, "Service").items()
    targets = {p["targetPort"] for p in service["spec"]["ports"]}
    assert targets == {"http"} and [p["name"] for p in containers["proxy"]["ports"]] == ["http"]
    assert [p["name"] for p in containers["web"]["ports"]] == ["metrics"]
    env = {e["name"]: e.get("value") for e in containers["web"]["env"]}
    assert env["WEB_BIND"].startswith("127.0.0.1:")  # gunicorn only on the pod's loopback
    proxy_env = {e["name"]: e["value"] for e in containers["proxy"]["env"]}
    assert proxy_env["WEB_UPSTREAM"] == env["WEB_BIND"] and proxy_env["API_MAX_BODY_BYTES"] == env["API_MAX_BODY_BYTES"]
    proxy_config = by_kind(objects, "ConfigMap")["mc-montecarlo-proxy"]["data"]["nginx.conf.template"]
    assert proxy_config == (CHART / "files/nginx.conf.template").read_text()
    assert containers["proxy"]["livenessProbe"]["httpGet"]["port"] == "http"


ALL_ON = (
    *SECRETS,
    "--set",
    "web.autoscaling.enabled=true",
    "--set",
    "worker.keda.enabled=true",
    "--set",
    "worker.keda.redisAddress=broker:6379",
    "--set",
    "metrics.podMonitor=true",
    "--set",
    "redisExporter.enabled=true",
    "--set",
    "redisExporter.broker=redis://broker:6379",
    "--set",
    "bridge.staticMembership=true",
)


def test_every_rendered_object_is_valid_kubernetes(helm):
    """Against the Kubernetes API's own JSON schemas (kubernetes-validate, offline, strict:
    no field the API does not know); the custom resources by their required fields."""
    import copy

    import kubernetes_validate

    objects = render(helm, *ALL_ON)
    custom = {"PodMonitor": ("selector", "podMetricsEndpoints"), "ScaledObject": ("scaleTargetRef", "triggers")}
    for obj in objects:
        if obj["kind"] in custom:
            assert all(k in obj["spec"] for k in custom[obj["kind"]]), obj["metadata"]["name"]
            continue
        kubernetes_validate.validate(obj, "1.31", strict=True)
    worker = next(o for o in objects if o["metadata"]["name"] == "mc-montecarlo-worker" and o["kind"] == "Deployment")
    broken = copy.deepcopy(worker)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = "ALL"
    with pytest.raises(kubernetes_validate.ValidationError):  # the check can fail
        kubernetes_validate.validate(broken, "1.31", strict=True)


def test_pods_run_unprivileged_with_resources_and_a_pinned_image(helm):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for name, pod in pod_specs(render(helm, *ALL_ON)).items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"].get("requests"), where
            if container["name"] in ("proxy", "redis-exporter"):  # upstream images, pinned by tag
                assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+(-\w+)?", container["image"]), where
            else:
                assert container["image"] == f"montecarlo:{chart['appVersion']}", where
        if name.endswith("redis-exporter"):
            continue  # a static binary that writes nothing
        app = [c for c in spec["containers"] if c["name"] != "proxy"]
        mounts = {m["mountPath"] for c in app for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, name  # the writable places of a read-only filesystem
        if name in ("mc-montecarlo-web", "mc-montecarlo-worker", "mc-montecarlo-maintenance"):
            assert "/app/.numba-cache" in mounts and spec["initContainers"][0]["name"] == "numba-cache", name


def test_web_autoscales_on_cpu_and_workers_on_the_queue_when_asked(helm):
    plain = by_kind(render(helm, *SECRETS), "Deployment")
    assert (
        plain["mc-montecarlo-web"]["spec"]["replicas"] == 2 and plain["mc-montecarlo-worker"]["spec"]["replicas"] == 2
    )
    objects = render(helm, *ALL_ON)
    deployments = by_kind(objects, "Deployment")
    assert "replicas" not in deployments["mc-montecarlo-web"]["spec"]  # the autoscaler owns them
    assert "replicas" not in deployments["mc-montecarlo-worker"]["spec"]
    ((_, hpa),) = by_kind(objects, "HorizontalPodAutoscaler").items()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mc-montecarlo-web"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    ((_, scaled),) = by_kind(objects, "ScaledObject").items()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "mc-montecarlo-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "simulations"
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert set(budgets) == {"mc-montecarlo-web", "mc-montecarlo-worker"}
    missing = subprocess.run(
        [helm, "template", "mc", str(CHART), *SECRETS, "--set", "worker.keda.enabled=true"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "worker.keda.redisAddress" in missing.stderr


def test_static_membership_gives_each_bridge_its_pod_name_as_its_group_instance_id(helm):
    def bridge_env(*args: str) -> list[dict[str, Any]]:
        (container,) = pod_specs(render(helm, *args))["mc-montecarlo-bridge"]["spec"]["containers"]
        return container.get("env", [])

    assert bridge_env(*SECRETS) == []  # off by default: a rollout's stopped bridges leave the group at once
    (instance_id,) = bridge_env(*ALL_ON)
    assert instance_id == {"name": "KAFKA_GROUP_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
