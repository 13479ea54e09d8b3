"""Run one simulation from a CSV of trades, through the same services a worker uses.

    python manage.py simulate samples/trades.csv --paths 20000 --seed 7 \\
        --profit-target 8000 --max-drawdown 10000 --daily-loss-limit 5000
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simulations import services
from simulations.engine import EngineValidationError, TradeHistory
from simulations.errors import InvalidInput
from simulations.models import JobStatus, JobTrigger
from simulations.process import worker_id


class Command(BaseCommand):
    help = "Simulate a trade history from a CSV file (column pnl or return; optional timestamp) and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", help="CSV with a 'pnl' (or 'return') column and optional 'timestamp'")
        parser.add_argument("--paths", default="10000", help='number of paths, or "auto"')
        parser.add_argument("--horizon", type=int, help="trades (or days) per path")
        parser.add_argument("--method", choices=["bootstrap", "permutation", "block"], default="bootstrap")
        parser.add_argument("--block-size", type=float, default=5.0)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--mode", choices=["pnl", "returns"], default="pnl")
        parser.add_argument("--starting-balance", type=float, default=100_000.0)
        parser.add_argument("--trades-per-day", type=int)
        parser.add_argument("--profit-target", type=float)
        parser.add_argument("--max-drawdown", type=float)
        parser.add_argument("--trailing", action="store_true", help="drawdown from the high-water mark")
        parser.add_argument("--daily-loss-limit", type=float)
        parser.add_argument("--ruin-level", type=float)
        parser.add_argument("--account", default="cli", help="funded account id to record the job under")
        parser.add_argument("--json", action="store_true", help="print the whole result as JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not os.path.exists(opts["csv"]):
            raise CommandError(f"no such file: {opts['csv']}")
        try:
            history = TradeHistory.from_csv(opts["csv"])
        except (EngineValidationError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {opts['csv']}: {exc}") from exc
        trades: list[dict[str, Any]] = [{"pnl": float(v)} for v in history.values]
        if history.days is not None:
            import datetime as dt

            for trade, day in zip(trades, history.days):
                trade["date"] = dt.date.fromordinal(int(day)).isoformat()
        try:
            job = services.create_job(
                funded_account_id=opts["account"],
                config=self._config(opts),
                trades=trades,
                trigger=JobTrigger.CLI,
                enqueue=False,
            )
        except InvalidInput as exc:
            raise CommandError(f"invalid input: {exc}") from exc
        job = services.run_job(job_id=job.id, worker_id=worker_id())
        if job is None or job.status != JobStatus.COMPLETED:
            raise CommandError(f"simulation failed: {job.error if job else 'job could not be claimed'}")
        if opts["json"]:
            self.stdout.write(json.dumps(job.result, indent=2))
        else:
            self.stdout.write(render_summary(job.id, job.result))

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
        }
        return {k: v for k, v in config.items() if v is not None}


def render_summary(job_id: Any, result: dict[str, Any]) -> str:
    """A readable summary of a stored result."""
    p = result["probabilities"]
    fmt_p = lambda name: "{:6.2%}  (95% CI {:.2%} .. {:.2%})".format(
        p[name]["estimate"], p[name]["ci95_low"], p[name]["ci95_high"]
    )
    lines = [
        f"job {job_id}",
        f"{result['paths']:,} paths x {result['horizon']:,} {result['unit']}s, seed {result['seed']}, "
        f"{result['elapsed_seconds']:.2f}s",
        "",
        "                 p5          p25          p50          p75          p95",
    ]
    for label, key in (("final P&L", "final_pnl"), ("max drawdown", "max_drawdown")):
        q = result[key]["percentiles"]
        lines.append(f"{label:<13}" + "".join(f"{q[k]:>13,.2f}" for k in ("p5", "p25", "p50", "p75", "p95")))
    q = result["max_drawdown_pct"]["percentiles"]
    lines.append(f"{'max DD %':<13}" + "".join(f"{q[k]:>13.2%}" for k in ("p5", "p25", "p50", "p75", "p95")))
    q = result["longest_losing_streak"]["percentiles"]
    lines.append(f"{'losing streak':<13}" + "".join(f"{q[k]:>13.0f}" for k in ("p5", "p25", "p50", "p75", "p95")))
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
    return "\n".join(lines) + "\n"
