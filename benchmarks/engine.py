"""Engine throughput vs a straightforward numpy implementation, in one run.

    .venv/bin/python -m benchmarks.engine [--repeat 5] [--quick]

Both sides do the same job: iid bootstrap of a 1,000-trade history, equity paths,
max drawdown, and the pass/fail rules (profit target, static max drawdown, daily
loss limit every 10 trades), every path to the full horizon. numpy draws the index matrix and works on
paths x horizon arrays in blocks of paths (so it fits in memory); the engine never
materialises them. Printed: trade-samples per second, the ratio, peak traced memory.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable

import numba
import numpy as np

from benchmarks.report import Report
from simulations.engine import Rules, SimulationConfig, simulate, warm_up

START = 100_000.0
TARGET = 8_000.0
MAX_DD = 6_000.0
DAILY = 3_000.0
PER_DAY = 10


def numpy_baseline(history: np.ndarray, paths: int, horizon: int, seed: int, block: int = 2_000) -> dict[str, float]:
    """Vectorised bootstrap with drawdown and rules, ``block`` paths at a time."""
    rng = np.random.default_rng(seed)
    passed = failed = 0
    dd_sum = 0.0
    n_days = horizon // PER_DAY
    for lo in range(0, paths, block):
        n = min(block, paths - lo)
        pnl = history[rng.integers(0, history.shape[0], size=(n, horizon))]
        equity = START + np.cumsum(pnl, axis=1)
        peak = np.maximum(np.maximum.accumulate(equity, axis=1), START)
        dd_sum += float((peak - equity).max(axis=1).sum())

        # first step at which each rule fires (horizon = never)
        def first(mask: np.ndarray) -> np.ndarray:
            return np.where(mask.any(axis=1), mask.argmax(axis=1), horizon)

        hit_target = first(equity >= START + TARGET)
        hit_dd = first(equity <= START - MAX_DD)
        day_start = np.concatenate(
            [np.full((n, 1), START), equity[:, PER_DAY - 1 : n_days * PER_DAY - 1 : PER_DAY]], axis=1
        )
        day_equity = equity[:, : n_days * PER_DAY].reshape(n, n_days, PER_DAY)
        hit_daily = first((day_equity <= (day_start[:, :n_days, None] - DAILY)).reshape(n, -1))
        breach = np.minimum(hit_dd, hit_daily)
        passed += int(np.count_nonzero(hit_target < breach))
        failed += int(np.count_nonzero(breach < np.minimum(hit_target, horizon)))
    return {"pass": passed / paths, "fail": failed / paths, "mean_max_dd": dd_sum / paths}


def engine_run(history: np.ndarray, paths: int, horizon: int, seed: int) -> dict[str, float]:
    result = simulate(
        history,
        SimulationConfig(
            paths=paths,
            horizon=horizon,
            seed=seed,
            starting_balance=START,
            trades_per_day=PER_DAY,
            stop_at_decision=False,  # every path runs the full horizon, as numpy's do
            rules=Rules(profit_target=TARGET, max_drawdown=MAX_DD, daily_loss_limit=DAILY),
        ),
    )
    return {
        "pass": result.probabilities["pass"].estimate,
        "fail": result.probabilities["fail"].estimate,
        "mean_max_dd": result.max_drawdown.mean,
    }


def best_times(
    runs: dict[str, Callable[[], dict[str, float]]], repeat: int, warm: int = 3
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Best wall time of each side over ``repeat`` rounds, the sides taking turns in
    every round, so a slow minute of this shared VM falls on both and not on one.
    ``warm`` untimed runs first: a size's first runs page-fault their fresh arrays
    (~1,000 minor faults, then ~800, ~150, ~20, then none: glibc raises its mmap
    threshold as blocks are freed). As in ``timeit``, the collector is off while timed."""
    out = {name: fn() for name, fn in runs.items()}
    for _ in range(warm - 1):
        for fn in runs.values():
            fn()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, fn in runs.items():
            gc.disable()
            started = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - started)
            gc.enable()
    return best, out


def peak_traced_mb(fn: Callable[[], dict[str, float]]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def main() -> None:
    table = Report("engine", "Engine: samples per second against a vectorised numpy bootstrap")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    args = parser.parse_args()

    history = np.random.default_rng(0).normal(8.0, 120.0, 1_000)
    warm_up()
    engine_run(history, 1_000, 100, 1)  # load every specialisation before timing
    sizes = [(10_000, 1_000), (100_000, 1_000), (10_000, 10_000)]
    if args.quick:
        sizes = [(2_000, 500)]
    table.line(f"numba {numba.__version__}, threads {numba.get_num_threads()}, numpy {np.__version__}")
    table.line(
        f"{'paths x horizon':>17} | {'engine samples/s':>16} | {'numpy samples/s':>15} | {'ratio':>6} | "
        f"{'engine peak MB':>14} | {'numpy peak MB':>13} | {'P(pass) engine / numpy':>22}"
    )
    table.line("-" * 124)
    for paths, horizon in sizes:
        samples = paths * horizon
        runs = {
            "engine": lambda paths=paths, horizon=horizon: engine_run(history, paths, horizon, 7),
            "numpy": lambda paths=paths, horizon=horizon: numpy_baseline(history, paths, horizon, 7),
        }
        best, out = best_times(runs, args.repeat)
        t_eng, t_np, r_eng, r_np = best["engine"], best["numpy"], out["engine"], out["numpy"]
        m_eng, m_np = peak_traced_mb(runs["engine"]), peak_traced_mb(runs["numpy"])
        table.line(
            f"{paths:>8,} x {horizon:<6,} | {samples / t_eng / 1e6:>14,.0f} M | {samples / t_np / 1e6:>13,.0f} M | "
            f"{t_np / t_eng:>5.1f}x | {m_eng:>14.1f} | {m_np:>13.1f} | "
            f"{r_eng['pass']:>10.4f} / {r_np['pass']:.4f}"
        )
    if not args.quick:
        table.save()


if __name__ == "__main__":
    main()
