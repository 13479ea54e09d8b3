"""The docs stand alone and say what is: the configuration table is .env.example's,
every link and alert has its target, and the project speaks of itself only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
from config_table import BEGIN, END, readme_with_table, settings_of  # noqa: E402

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.is_file() and path.suffix not in (".png", ".svg", ".csv", ".lock") and path != Path(__file__):
            files.append(path)
    return files


def test_the_readme_configuration_table_is_made_from_env_example():
    readme = (ROOT / "README.md").read_text()
    assert BEGIN in readme and END in readme
    expected = readme_with_table(readme, (ROOT / ".env.example").read_text())
    assert readme == expected, "run: python deploy/config_table.py --write"


def test_env_example_lists_exactly_the_settings_the_code_reads():
    read = set()
    sources = [p for part in ("montecarlo", "simulations", "workers", "deploy") for p in (ROOT / part).rglob("*.py")]
    for path in sources:
        text = path.read_text()
        read |= set(re.findall(r'\.(?:str|int|float|bool|list|json|db)\(\s*"([A-Z][A-Z0-9_]*)"', text))
        read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]*)"', text))
    read -= {"NUMBA_CPU_FEATURES", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"}  # numba's and OpenMP's own
    rows = settings_of((ROOT / ".env.example").read_text())
    listed = {name for _, name, _, _ in rows}
    assert read - listed == set(), "read but not in .env.example"
    assert listed - read == set(), "in .env.example but read nowhere"
    assert all(meaning for _, _, _, meaning in rows), "every variable says what it means"


def test_every_relative_link_in_the_docs_has_its_target():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}"


def test_the_runbook_has_a_section_for_every_alert():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    sections = set(re.findall(r"^## (\S+)$", (ROOT / "docs/runbook.md").read_text(), re.M))
    assert alerts and alerts <= sections, alerts - sections


def test_the_quick_start_is_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["./deploy/demo.sh", "./deploy/test.sh"]
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "exec bash deploy/test.sh"


def test_the_project_speaks_of_itself_only():
    """No work diary: no numbered sessions, no dated lab notes, no scratch scripts, and
    nothing outside the repository."""
    patterns = {
        "a numbered session": re.compile(r"\bsessions? [0-9]", re.I),
        "a lab note's time": re.compile(r"\b(this (morning|afternoon|session)|ad hoc)\b", re.I),
        "a scratch script": re.compile(r"/tmp/[\w./-]+\.(py|sh|txt|log)\b"),
        "a file outside the repository": re.compile(r"\.\./shared|\bshared/(ARCHITECTURE|STYLE|FIELD-NOTES)"),
        "a dated measurement": re.compile(r"\b(measured|ran|run) (on|at) 20[0-9]{2}-[0-9]{2}-[0-9]{2}", re.I),
    }
    found = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for what, pattern in patterns.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}: {match.group(0)!r}")
    assert not found, "\n".join(found)


def test_every_rule_and_result_field_of_the_engine_is_in_its_doc():
    from dataclasses import fields

    from simulations.engine import Rules, SimulationConfig
    from simulations.engine.kernels import FAILURE_CAUSES
    from simulations.engine.result import SimulationResult

    doc = (ROOT / "docs" / "engine.md").read_text()
    names = {f.name for cls in (Rules, SimulationConfig, SimulationResult) for f in fields(cls)}
    names |= set(FAILURE_CAUSES.values())
    missing = sorted(name for name in names if f"`{name}`" not in doc and f"`{name}:" not in doc)
    assert not missing, f"docs/engine.md does not name: {missing}"
