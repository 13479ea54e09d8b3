"""How long a chart takes to draw, against the simulation it pictures.

A typical job (10,000 paths x 250 trades, target, static drawdown and daily limit) is
simulated once; each chart and format is then drawn ``--repeats`` times. The ratio is
the chart's time over the simulation's, both measured in this run. The goal: a chart
well under 100 ms, so the first view of a finished job is not slower than its page.

    ./deploy/bench.sh charts [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.report import Report
from simulations import charts
from simulations.engine import SimulationConfig, TradeHistory, simulate, warm_up
from tests import factories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    warm_up()
    history = TradeHistory.from_records(factories.trades(250, seed=3))
    config = SimulationConfig.from_dict(
        {
            "paths": 10_000,
            "seed": 7,
            "starting_balance": 50_000,
            "trades_per_day": 5,
            "rules": {"profit_target": 2_500, "max_drawdown": 2_000, "daily_loss_limit": 1_000},
        }
    )
    engine_ms = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = simulate(history, config)
        engine_ms.append((time.perf_counter() - start) * 1000)
    stored = result.to_dict()
    charts.render(stored, chart="fan", fmt="svg")  # matplotlib's import and font cache, once
    engine = statistics.median(engine_ms)

    report = Report("charts", "Charts: time to draw, against the simulation pictured")
    report.line(f"simulation 10,000 paths x 250 trades: median {engine:.1f} ms")
    report.line()
    report.line(f"{'chart':<10} {'format':<6} {'min ms':>7} {'median ms':>10} {'bytes':>8} {'x simulation':>13}")
    for chart in charts.CHARTS:
        for fmt in charts.FORMATS:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                picture = charts.render(stored, chart=chart, fmt=fmt)
                times.append((time.perf_counter() - start) * 1000)
            median = statistics.median(times)
            report.line(
                f"{chart:<10} {fmt:<6} {min(times):>7.1f} {median:>10.1f} {len(picture):>8,} {median / engine:>12.1f}x"
            )
    report.save()


if __name__ == "__main__":
    main()
