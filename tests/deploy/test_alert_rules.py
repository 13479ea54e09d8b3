"""The alert rules, checked and unit-tested by the real ``promtool`` (Debian's
``prometheus`` package, installed by deploy/test.sh): every alert fires in a case of
``deploy/prometheus/alerts.test.yml`` and stays silent in another, and links its
section of the runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/alerts.yml"
RECORDING = ROOT / "deploy/prometheus/recording.yml"
TESTS = ROOT / "deploy/prometheus/alerts.test.yml"


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is installed by deploy/test.sh (Debian package prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid():
    done = promtool("check", "rules", str(RULES), str(RECORDING))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_shipped_scrape_config_is_valid_with_its_rule_files(tmp_path):
    """prometheus.yml as compose mounts it: its rule files where the container has them."""
    config = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/", f"{ROOT}/deploy/prometheus/"))
    done = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0 and "2 rule files found" in done.stdout, done.stdout + done.stderr


def test_recording_rules_follow_the_naming_convention_and_each_is_used():
    """level:metric:operations, and every recorded series is read by an alert, the
    dashboard or another rule (a rule nobody reads is cost without use)."""
    recorded = [r["record"] for g in yaml.safe_load(RECORDING.read_text())["groups"] for r in g["rules"]]
    assert recorded and all(re.fullmatch(r"[a-z]+:montecarlo_[a-z_]+:[a-z0-9]+", name) for name in recorded)
    readers = RULES.read_text() + (ROOT / "deploy/grafana/dashboards/montecarlo.json").read_text()
    readers += "\n".join(r["expr"] for g in yaml.safe_load(RECORDING.read_text())["groups"] for r in g["rules"])
    assert all(name in readers.replace(f"record: {name}", "") for name in recorded), [
        name for name in recorded if name not in readers
    ]


def test_every_alert_fires_and_stays_silent_as_its_unit_tests_say(tmp_path):
    """promtool compares annotations too: they are written once, in alerts.yml, and
    filled into each expected alert here."""
    rules = alerts()
    cases = yaml.safe_load(TESTS.read_text())
    fired, silent = set(), set()
    for case in cases["tests"]:
        for check in case.get("alert_rule_test", []):
            name = check["alertname"]
            assert name in rules, name
            for expected in check["exp_alerts"]:
                expected.setdefault("exp_annotations", rules[name].get("annotations", {}))
            (fired if check["exp_alerts"] else silent).add(name)
    assert fired == silent == set(rules), (set(rules) - fired, set(rules) - silent)
    shutil.copy(RULES, tmp_path / "alerts.yml")
    shutil.copy(RECORDING, tmp_path / "recording.yml")
    (tmp_path / "alerts.test.yml").write_text(yaml.safe_dump(cases, sort_keys=False))
    done = promtool("test", "rules", str(tmp_path / "alerts.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_links_its_runbook_section():
    sections = {s.lower() for s in re.findall(r"^## (\S+)$", (ROOT / "docs/runbook.md").read_text(), re.M)}
    for name, rule in alerts().items():
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"docs/runbook.md#{name.lower()}" and name.lower() in sections, name
