"""Run one simulation from a file of trades, through the same services a worker uses.

    python manage.py simulate samples/trades.csv --paths 20000 --seed 7 \\
        --profit-target 8000 --max-drawdown 10000 --daily-loss-limit 5000 --chart fan.svg

Trade files:
  CSV   a header with ``pnl`` (or ``return``, ``value``, ``profit``) and optionally a time
        column (``closedAt``, ``closed_at``, ``timestamp``, ``date`` ...) and an ``mae``
        column (max adverse excursion; ``--mae-column`` names another): one trade a row.
  JSON  a list of numbers, a list of trades as the API takes them
        (``[{"pnl": 120.5, "closedAt": "2026-06-01T14:30:00Z"}, ...]``), or an object
        ``{"trades": [...]}``.

On a terminal it shows a progress bar and says when the kernels are compiled (once per
machine, then cached); the compile time is reported apart from the simulation's.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter

from simulations import charts, services
from simulations.engine import EngineValidationError, SimulationConfig, TradeHistory, warm_up
from simulations.errors import InvalidInput
from simulations.models import JobStatus, JobTrigger
from simulations.process import worker_id
from simulations.wire import snake_keys

FORMATS = ("text", "json", "csv")
PERCENTILE_COLUMNS = ("p5", "p25", "p50", "p75", "p95")
DISTRIBUTIONS = (
    "final_pnl",
    "final_return",
    "max_drawdown",
    "max_drawdown_pct",
    "longest_losing_streak",
    "steps_to_pass",
    "days_to_pass",
)


class HelpFormatter(DjangoHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Django's help, with each option's default (where it has one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help or ""
        return super()._get_help_string(action) or ""


class Command(BaseCommand):
    help = "Simulate a trade history from a CSV or JSON file and print the distribution."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, formatter_class=HelpFormatter, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "trades",
            help="a .csv file (a header with pnl, optionally closedAt or date) or a .json file "
            '(a list of numbers or of trades {"pnl": ..., "closedAt": ...}, or {"trades": [...]})',
        )
        parser.add_argument("--paths", default="10000", help='number of paths, or "auto"')
        parser.add_argument("--horizon", type=int, help="trades (or days) per path; default: the history's length")
        parser.add_argument(
            "--method", choices=["bootstrap", "permutation", "block"], default="bootstrap", help="how paths resample"
        )
        parser.add_argument("--block-size", type=float, default=5.0, help="mean block length (block method)")
        parser.add_argument("--seed", type=int, help="default: drawn, and printed")
        parser.add_argument(
            "--mode", choices=["pnl", "returns"], default="pnl", help="amounts, or returns that compound"
        )
        parser.add_argument("--starting-balance", type=float, default=100_000.0, help="the account's balance")
        parser.add_argument("--trades-per-day", type=int, help="for a daily loss limit on undated trades")
        parser.add_argument("--profit-target", type=float, help="profit over the starting balance that passes")
        parser.add_argument("--max-drawdown", type=float, help="amount below the start (or the high) that fails")
        parser.add_argument("--trailing", action="store_true", help="drawdown from the high-water mark")
        parser.add_argument(
            "--end-of-day", action="store_true", help="the trailing high-water mark moves at a day's close only"
        )
        parser.add_argument(
            "--trailing-lock", type=float, help="the trailing floor stops at the starting balance + this amount"
        )
        parser.add_argument("--daily-loss-limit", type=float, help="loss within one day that fails")
        parser.add_argument("--ruin-level", type=float, help="balance that ruins the account")
        parser.add_argument("--min-trading-days", type=int, help="trading days before a pass counts")
        parser.add_argument("--max-trading-days", type=int, help="the time limit: undecided then fails")
        parser.add_argument(
            "--time-limit-undecided", action="store_true", help="at the time limit a path is undecided, not failed"
        )
        parser.add_argument(
            "--consistency", type=float, help="a pass needs the best day at most this share of the profit"
        )
        parser.add_argument("--strict-target", action="store_true", help="the target passes only when exceeded")
        parser.add_argument("--strict-floors", action="store_true", help="a floor fails only when equity goes below")
        parser.add_argument(
            "--mae-column", default="mae", help="the CSV column with each trade's max adverse excursion, if any"
        )
        parser.add_argument(
            "--payout",
            metavar="JSON",
            help='a funded account\'s payout policy, as config.payout: \'{"split": 0.8, "cadenceDays": 10}\'',
        )
        parser.add_argument("--account", default="cli", help="funded account id to record the job under")
        parser.add_argument("--format", choices=FORMATS, default="text", help="what to print")
        parser.add_argument("--chart", metavar="FILE", help="draw the equity fan to FILE (.svg or .png)")
        parser.add_argument("--histogram", metavar="FILE", help="draw the final P&L histogram to FILE (.svg or .png)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["verbosity"] < 2:  # the service's INFO lines (job created, simulated) are for its logs, not here
            logging.getLogger("simulations").setLevel(logging.WARNING)
        charts_to_draw = self._chart_files(opts)
        trades = read_trades(opts["trades"], mae_column=opts["mae_column"])
        config = self._config(opts)
        try:
            job = services.create_job(
                funded_account_id=opts["account"], config=config, trades=trades, trigger=JobTrigger.CLI, enqueue=False
            )
        except InvalidInput as exc:
            raise CommandError(f"invalid input: {exc}") from exc
        on_terminal = sys.stderr.isatty()
        compile_seconds = prepare_kernels(config, trades, say=self.stderr.write if on_terminal else None)
        with ProgressBar(enabled=on_terminal) as bar:
            job = services.run_job(job_id=job.id, worker_id=worker_id(), on_progress=bar.update)
        if job is None or job.status != JobStatus.COMPLETED:
            raise CommandError(f"simulation failed: {job.error if job else 'job could not be claimed'}")
        for chart, path in charts_to_draw:
            path.write_bytes(charts.render(job.result, chart=chart, fmt=path.suffix[1:]))
        if opts["format"] == "json":
            self.stdout.write(json.dumps(job.result, indent=2))
        elif opts["format"] == "csv":
            self.stdout.write(render_csv(job.result), ending="")
        else:
            self.stdout.write(render_summary(job.id, job.result, compile_seconds=compile_seconds))
            for _, path in charts_to_draw:
                self.stdout.write(f"chart: {path}")

    @staticmethod
    def _chart_files(opts: dict[str, Any]) -> list[tuple[str, Path]]:
        files = []
        for chart, option in (("fan", "chart"), ("histogram", "histogram")):
            if opts[option]:
                path = Path(opts[option])
                if path.suffix.lower() not in (".svg", ".png"):
                    raise CommandError(f"--{option} {path}: the file must end in .svg or .png")
                if not path.parent.is_dir():
                    raise CommandError(f"--{option} {path}: no directory {path.parent}")
                files.append((chart, path.with_suffix(path.suffix.lower())))
        return files

    @staticmethod
    def _config(opts: dict[str, Any]) -> dict[str, Any]:
        paths: Any = opts["paths"]
        if paths != "auto":
            try:
                paths = int(paths)
            except ValueError:
                raise CommandError('--paths must be an integer or "auto"') from None
        rules = {
            "profit_target": opts["profit_target"],
            "max_drawdown": opts["max_drawdown"],
            "drawdown_type": "trailing" if opts["trailing"] else "static",
            "daily_loss_limit": opts["daily_loss_limit"],
            "ruin_level": opts["ruin_level"],
            "trailing_basis": "end_of_day" if opts["end_of_day"] else None,
            "trailing_lock": opts["trailing_lock"],
            "min_trading_days": opts["min_trading_days"],
            "max_trading_days": opts["max_trading_days"],
            "time_limit_fails": False if opts["time_limit_undecided"] else None,
            "consistency": opts["consistency"],
            "target_inclusive": False if opts["strict_target"] else None,
            "floors_inclusive": False if opts["strict_floors"] else None,
        }
        config = {
            "paths": paths,
            "horizon": opts["horizon"],
            "method": opts["method"],
            "block_size": opts["block_size"],
            "seed": opts["seed"],
            "mode": opts["mode"],
            "starting_balance": opts["starting_balance"],
            "trades_per_day": opts["trades_per_day"],
            "rules": {k: v for k, v in rules.items() if v is not None},
            "payout": _json_option("--payout", opts["payout"]),
        }
        return {k: v for k, v in config.items() if v is not None}


def _json_option(flag: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{flag} is not JSON: {exc}") from None


def read_trades(name: str, *, mae_column: str = "mae") -> list[Any]:
    """The trades of a CSV or JSON file, as the API takes them; CommandError if unreadable."""
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"no such file: {name}")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            trades = data.get("trades") if isinstance(data, dict) else data
            if not isinstance(trades, list):
                raise CommandError(f"{name}: JSON must be a list of trades or an object with a 'trades' list")
            return trades
        history = TradeHistory.from_csv(str(path), mae_column=mae_column)
    except (EngineValidationError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read {name}: {exc}") from exc
    out: list[dict[str, Any]] = [{"pnl": float(v)} for v in history.values]
    if history.days is not None:
        for trade, day in zip(out, history.days, strict=True):
            trade["date"] = dt.date.fromordinal(int(day)).isoformat()
    if history.mae is not None:
        for trade, mae in zip(out, history.mae, strict=True):
            trade["mae"] = float(mae)
    return out


def prepare_kernels(config: dict[str, Any], trades: list[Any], *, say: Callable[[str], Any] | None) -> float:
    """Load or compile the kernels this run needs (its method, and the fast kernels or the
    general one as its rules and trades ask), before the run, so their compile time is
    not the simulation's. Returns the seconds it took."""
    try:
        parsed = SimulationConfig.from_dict(snake_keys(config))
    except EngineValidationError:
        return 0.0  # the job has failed validation already; nothing to prepare
    if say is not None:
        say("preparing the kernels (compiled once per machine, then cached) ...")
    start = time.perf_counter()
    excursions = any(isinstance(t, dict) and t.get("mae") not in (None, "") for t in trades)
    warm_up(methods=(parsed.method,), modes=(parsed.mode,), parallel=(True,), general=(parsed.general() or excursions,))
    return time.perf_counter() - start


class ProgressBar:
    """rich's progress bar on stderr while the paths are drawn; nothing off a terminal."""

    def __init__(self, *, enabled: bool):
        self.enabled, self.progress, self.task = enabled, None, None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.progress = Progress(
                "paths", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True)
            )
            self.progress.start()
        return self

    def update(self, done: int, total: int) -> None:
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task("simulate", total=total)
            self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def render_summary(job_id: Any, result: dict[str, Any], *, compile_seconds: float = 0.0) -> str:
    """A readable summary of a stored result."""
    p = result["probabilities"]

    def fmt_p(name: str) -> str:
        return f"{p[name]['estimate']:6.2%}  (95% CI {p[name]['ci95_low']:.2%} .. {p[name]['ci95_high']:.2%})"

    prepared = f" (kernels ready in {compile_seconds:.2f}s before it)" if compile_seconds >= 0.5 else ""
    lines = [
        f"job {job_id}",
        f"{result['paths']:,} paths x {result['horizon']:,} {result['unit']}s, seed {result['seed']}, "
        f"{result['elapsed_seconds']:.2f}s{prepared}",
        "",
        "             " + "".join(f"{k:>13}" for k in PERCENTILE_COLUMNS),
    ]
    for label, key in (("final P&L", "final_pnl"), ("max drawdown", "max_drawdown")):
        q = result[key]["percentiles"]
        lines.append(f"{label:<13}" + "".join(f"{q[k]:>13,.2f}" for k in PERCENTILE_COLUMNS))
    q = result["max_drawdown_pct"]["percentiles"]
    lines.append(f"{'max DD %':<13}" + "".join(f"{q[k]:>13.2%}" for k in PERCENTILE_COLUMNS))
    q = result["longest_losing_streak"]["percentiles"]
    lines.append(f"{'losing streak':<13}" + "".join(f"{q[k]:>13.0f}" for k in PERCENTILE_COLUMNS))
    lines += [
        "",
        f"P(profit)     {fmt_p('profit')}",
        f"P(pass)       {fmt_p('pass')}",
        f"P(fail)       {fmt_p('fail')}",
        f"P(undecided)  {fmt_p('undecided')}",
        f"P(ruin)       {fmt_p('ruin')}",
    ]
    if result.get("steps_to_pass") and result["steps_to_pass"]["count"]:
        q = result["steps_to_pass"]["percentiles"]
        lines.append(f"{result['unit']}s to pass: p25 {q['p25']:.0f}, p50 {q['p50']:.0f}, p75 {q['p75']:.0f}")
    payouts = result.get("payouts")
    if payouts:
        q = payouts["paid"]["percentiles"]
        lines.append(
            f"paid to the trader: mean {payouts['paid']['mean']:,.2f}, p50 {q['p50']:,.2f}, p95 {q['p95']:,.2f}; "
            f"P(a payout) {payouts['any_payout']['estimate']:.2%}, P(breach) {payouts['breach']['estimate']:.2%}"
        )
        if payouts["firm_net"]:
            lines.append(f"firm's net (fees less payouts): mean {payouts['firm_net']['mean']:,.2f}")
    causes = {name: n for name, n in result.get("failure_causes", {}).items() if n}
    if causes:
        lines.append("failed by: " + ", ".join(f"{name.replace('_', ' ')} {n:,}" for name, n in causes.items()))
    for name, why in result.get("ignored_settings", {}).items():
        lines.append(f"ignored: {name} ({why})")
    return "\n".join(lines) + "\n"


def render_csv(result: dict[str, Any]) -> str:
    """The result's numbers as ``metric,statistic,value`` rows, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "statistic", "value"])
    for key in ("paths", "horizon", "unit", "seed", "elapsed_seconds"):
        writer.writerow(["run", key, result[key]])
    for key in DISTRIBUTIONS:
        distribution = result.get(key)
        if not distribution:
            continue
        for stat in ("count", "mean", "std", "min", "max"):
            writer.writerow([key, stat, distribution[stat]])
        for name, value in distribution["percentiles"].items():
            writer.writerow([key, name, value])
    for name, probability in result["probabilities"].items():
        for stat in ("estimate", "ci95_low", "ci95_high", "count"):
            writer.writerow([f"probability_{name}", stat, probability[stat]])
    for name, count in result.get("failure_causes", {}).items():
        writer.writerow(["failure_causes", name, count])
    for key, value in (result.get("payouts") or {}).items():
        if value and "percentiles" in value:
            for stat in ("count", "mean", "std", "min", "max"):
                writer.writerow([f"payouts_{key}", stat, value[stat]])
            for name, q in value["percentiles"].items():
                writer.writerow([f"payouts_{key}", name, q])
        elif value:
            for stat in ("estimate", "ci95_low", "ci95_high", "count"):
                writer.writerow([f"payouts_{key}", stat, value[stat]])
    return out.getvalue()
