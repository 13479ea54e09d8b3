"""``manage.py simulate``: a CSV or JSON file in; a summary, JSON, CSV or charts out; a progress
bar on a terminal and nothing extra on a pipe; through the services."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

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
    call_command("simulate", str(SAMPLE), "--paths", "500", "--seed", "1", "--format", "json", stdout=out)
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


def test_csv_output_has_every_number_of_the_result():
    out = StringIO()
    call_command("simulate", str(SAMPLE), "--paths", "500", "--seed", "1", "--format", "csv", stdout=out)
    rows = list(csv.DictReader(StringIO(out.getvalue())))
    result = SimulationJob.objects.get().result
    by_key = {(r["metric"], r["statistic"]): r["value"] for r in rows}
    assert float(by_key[("final_pnl", "p50")]) == pytest.approx(result["final_pnl"]["percentiles"]["p50"])
    assert float(by_key[("probability_pass", "estimate")]) == pytest.approx(result["probabilities"]["pass"]["estimate"])
    assert by_key[("run", "paths")] == "500"


def test_a_json_file_of_trades_in_the_apis_shapes(tmp_path):
    trades = [{"pnl": 120.5, "closedAt": "2026-06-01T14:30:00Z"}, {"pnl": -80, "closedAt": "2026-06-02T10:00:00Z"}]
    for name, body in (("list.json", trades), ("object.json", {"trades": trades}), ("numbers.json", [5, -3, 2.5])):
        path = tmp_path / name
        path.write_text(json.dumps(body))
        call_command("simulate", str(path), "--paths", "200", "--seed", "2", stdout=StringIO())
    units = [j.result["unit"] for j in SimulationJob.objects.order_by("created_at")]
    assert units == ["day", "day", "trade"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(CommandError, match="list of trades"):
        call_command("simulate", str(bad), stdout=StringIO())


def test_charts_are_drawn_to_the_files_named(tmp_path):
    fan, histogram = tmp_path / "fan.svg", tmp_path / "hist.png"
    out = StringIO()
    call_command(
        "simulate",
        str(SAMPLE),
        "--paths",
        "800",
        "--seed",
        "1",
        "--profit-target",
        "6000",
        "--chart",
        str(fan),
        "--histogram",
        str(histogram),
        stdout=out,
    )
    svg = fan.read_text()
    assert "<svg" in svg and "Equity over" in svg and "target" in svg
    assert Image.open(histogram).size == (800, 450)
    assert f"chart: {fan}" in out.getvalue()
    with pytest.raises(CommandError, match=r"\.svg or \.png"):
        call_command("simulate", str(SAMPLE), "--chart", str(tmp_path / "fan.gif"), stdout=StringIO())


def test_help_shows_the_defaults():
    proc = subprocess.run(
        [sys.executable, "manage.py", "simulate", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    assert "(default: 10000)" in text and "(default: bootstrap)" in text and "(default: text)" in text
    assert "(default: None)" not in text


def run_cli(*args: str, tty: bool) -> tuple[str, str]:
    """The command as a separate process on the test database, its stderr a pseudo-terminal or a pipe."""
    import os
    import pty

    from django.db import connection

    env = dict(os.environ, DATABASE_URL=database_url_of(connection))
    if not tty:
        proc = subprocess.run(
            [sys.executable, "manage.py", "simulate", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, proc.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "simulate", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    assert proc.wait(300) == 0
    os.close(leader)
    return out, b"".join(chunks).decode(errors="replace")


def database_url_of(connection) -> str:
    import os
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.mark.django_db(transaction=True)
def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_only_the_output():
    args = (str(SAMPLE), "--paths", "300000", "--seed", "4")
    out, err = run_cli(*args, tty=True)
    assert "preparing the kernels" in err and "paths" in err and "300000/300000" in err.replace(",", ""), err[-500:]
    assert "300,000 paths" in out
    out, err = run_cli(*args, tty=False)
    assert err == "" and "300,000 paths" in out


def test_the_firm_rules_and_excursions_from_the_command_line(tmp_path):
    trades = tmp_path / "t.csv"
    rows = ["closedAt,pnl,worst"] + [
        f"2026-06-{1 + i // 2:02d},{pnl},{worst}"
        for i, (pnl, worst) in enumerate([(300, 50), (-120, 400), (-200, 700), (50, 0)] * 5)
    ]
    trades.write_text("\n".join(rows) + "\n")
    out = StringIO()
    call_command(
        "simulate", str(trades), "--paths", "3000", "--seed", "5", "--starting-balance", "10000",
        "--profit-target", "1500", "--max-drawdown", "600", "--trailing", "--end-of-day", "--trailing-lock", "0",
        "--min-trading-days", "3", "--max-trading-days", "8", "--consistency", "0.5", "--strict-floors",
        "--mae-column", "worst", "--trades-per-day", "4", stdout=out,
    )  # fmt: skip
    job = SimulationJob.objects.get()
    rules = job.result["config"]["rules"]
    assert rules["trailing_basis"] == "end_of_day" and rules["trailing_lock"] == 0
    assert (rules["min_trading_days"], rules["max_trading_days"], rules["consistency"]) == (3, 8, 0.5)
    assert rules["floors_inclusive"] is False and rules["target_inclusive"] is True
    assert job.input_data["trades"][1]["mae"] == 400.0
    causes = job.result["failure_causes"]
    assert causes["max_drawdown"] > 0 and sum(causes.values()) == job.result["probabilities"]["fail"]["count"]
    text = out.getvalue()
    assert "failed by: " in text and "max drawdown" in text
    assert "ignored: trades_per_day (the trades carry dates: a day is a date)" in text


def test_a_funded_account_with_payouts_from_the_command_line():
    out = StringIO()
    policy = '{"split": 0.8, "cadenceDays": 5, "buffer": 1000, "fees": 500}'
    call_command(
        "simulate", str(SAMPLE), "--paths", "2000", "--seed", "2", "--max-drawdown", "5000", "--trailing",
        "--payout", policy, stdout=out,
    )  # fmt: skip
    result = SimulationJob.objects.get().result
    assert result["config"]["payout"]["cadence_days"] == 5
    paid = result["payouts"]["paid"]
    assert f"paid to the trader: mean {paid['mean']:,.2f}" in out.getvalue()
    assert f"firm's net (fees less payouts): mean {500 - paid['mean']:,.2f}" in out.getvalue()
    rows = StringIO()
    call_command("simulate", str(SAMPLE), "--paths", "200", "--payout", policy, "--format", "csv", stdout=rows)
    metrics = {row[0] for row in csv.reader(StringIO(rows.getvalue()))}
    assert {"payouts_paid", "payouts_any_payout", "payouts_firm_net", "payouts_days_to_first_payout"} <= metrics
    for bad, message in (("{split", "--payout is not JSON"), ('{"split": 3}', r"config\.payout\.split")):
        with pytest.raises(CommandError, match=message):
            call_command("simulate", str(SAMPLE), "--payout", bad, stdout=StringIO())
