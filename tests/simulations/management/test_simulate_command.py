"""``manage.py simulate``: a CSV in, a readable summary out, through the services."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from simulations.models import JobStatus, SimulationJob

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "samples" / "trades.csv"
pytestmark = pytest.mark.django_db


def test_the_sample_runs_and_prints_a_summary():
    out = StringIO()
    call_command(
        "simulate",
        str(SAMPLE),
        "--paths",
        "5000",
        "--seed",
        "3",
        "--profit-target",
        "6000",
        "--max-drawdown",
        "5000",
        "--daily-loss-limit",
        "2500",
        stdout=out,
    )
    text = out.getvalue()
    for label in ("final P&L", "max drawdown", "P(profit)", "P(pass)", "P(ruin)", "5,000 paths"):
        assert label in text
    job = SimulationJob.objects.get()
    assert job.status == JobStatus.COMPLETED and job.trigger == "cli"
    assert job.result["unit"] == "day" and job.result["seed"] == 3


def test_json_output_is_the_stored_result():
    out = StringIO()
    call_command("simulate", str(SAMPLE), "--paths", "500", "--seed", "1", "--json", stdout=out)
    assert json.loads(out.getvalue()) == SimulationJob.objects.get().result


@pytest.mark.parametrize(
    "args,message",
    [
        (["/no/such.csv"], "no such file"),
        ([str(SAMPLE), "--paths", "many"], "--paths"),
        ([str(SAMPLE), "--paths", "0"], "config.paths"),
        ([str(SAMPLE), "--max-drawdown", "-5"], "config.rules.maxDrawdown"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        call_command("simulate", *args, stdout=StringIO())
    assert not SimulationJob.objects.filter(status=JobStatus.RUNNING).exists()


def test_a_csv_without_a_pnl_column_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("price,qty\n1,2\n")
    with pytest.raises(CommandError, match="pnl"):
        call_command("simulate", str(bad), stdout=StringIO())


def test_the_command_line_exits_non_zero_with_a_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "manage.py", "simulate", str(tmp_path / "missing.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "no such file" in proc.stderr
