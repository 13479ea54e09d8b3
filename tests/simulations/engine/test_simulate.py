"""``simulate`` against what is known exactly: moments, enumeration, invariances."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from simulations.engine import Rules, SimulationConfig, TradeHistory, simulate
from simulations.engine import simulation as simulate_module

ROOT = Path(__file__).resolve().parents[3]
HISTORY = np.array([120.0, -80.0, 35.5, -240.0, 60.0, 15.0, -30.0, 210.0, -55.0, 5.0])


def comparable(result):
    data = result.to_dict()
    data.pop("elapsed_seconds")
    return data


def test_iid_bootstrap_final_pnl_has_the_known_mean_and_variance():
    horizon, paths = 50, 200_000
    result = simulate(HISTORY, SimulationConfig(paths=paths, horizon=horizon, seed=11, starting_balance=1e9))
    mean, var = HISTORY.mean() * horizon, HISTORY.var() * horizon
    se_mean = math.sqrt(var / paths)
    assert abs(result.final_pnl.mean - mean) < 4 * se_mean
    # the sample variance of n draws has relative sd about sqrt(2 / n) for light tails
    assert result.final_pnl.std**2 == pytest.approx(var, rel=4 * math.sqrt(2 / paths) * 2)


def test_permutation_leaves_the_final_pnl_unchanged():
    result = simulate(
        HISTORY, SimulationConfig(paths=2_000, method="permutation", seed=5, rules=Rules(ruin_level=-1e9))
    )
    assert result.final_pnl.std == pytest.approx(0.0, abs=1e-9)
    assert result.final_pnl.mean == pytest.approx(HISTORY.sum())
    assert result.max_drawdown.std > 0


def exact_outcomes(history, horizon, orders, target, dd_limit):
    """Enumerate every equally likely path: P(pass), P(fail), P(undecided), P(profit)."""
    counts = {"pass": 0, "fail": 0, "undecided": 0, "profit": 0}
    total = 0
    for order in orders:
        equity, outcome = 0.0, "undecided"
        for x in (history[i] for i in order[:horizon]):
            equity += x
            if equity <= -dd_limit:
                outcome = "fail"
                break
            if equity >= target:
                outcome = "pass"
                break
        counts[outcome] += 1
        counts["profit"] += equity > 0
        total += 1
    return {k: v / total for k, v in counts.items()}


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
def test_probabilities_match_exact_enumeration_of_all_paths(method):
    history = np.array([40.0, -25.0, 15.0, -60.0])
    horizon = 4
    orders = itertools.product(range(4), repeat=horizon) if method == "bootstrap" else itertools.permutations(range(4))
    exact = exact_outcomes(history, horizon, list(orders), target=50.0, dd_limit=70.0)
    result = simulate(
        history,
        SimulationConfig(
            paths=200_000,
            horizon=horizon,
            method=method,
            seed=99,
            starting_balance=1_000.0,
            rules=Rules(profit_target=50.0, max_drawdown=70.0),
        ),
    )
    for name in ("pass", "fail", "undecided", "profit"):
        p = result.probabilities[name]
        # 4 standard errors: a false alarm about once in 16,000 runs
        assert abs(p.estimate - exact[name]) <= 4 * math.sqrt(exact[name] * (1 - exact[name]) / 200_000) + 1e-12, name
        assert p.ci95_low <= p.estimate <= p.ci95_high


def test_same_seed_same_numbers_other_seed_other_numbers():
    config = SimulationConfig(
        paths=5_000, method="block", block_size=3, seed=7, rules=Rules(profit_target=300, max_drawdown=400)
    )
    a, b = simulate(HISTORY, config), simulate(HISTORY, config)
    assert comparable(a) == comparable(b)
    c = simulate(HISTORY, config.with_seed(8))
    assert comparable(c)["final_pnl"] != comparable(a)["final_pnl"]


def test_results_do_not_depend_on_chunking(monkeypatch):
    config = SimulationConfig(paths=3_001, seed=21, rules=Rules(profit_target=300, max_drawdown=400), trades_per_day=3)
    whole = simulate(HISTORY, config)
    monkeypatch.setattr(simulate_module, "PROGRESS_CHUNK", 1_000)
    seen = []
    chunked = simulate(HISTORY, config, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1000, 3001), (2000, 3001), (3000, 3001), (3001, 3001)]
    assert comparable(whole) == comparable(chunked)


THREADS_SCRIPT = """
import json, numba
from simulations.engine import Rules, SimulationConfig, simulate
cfg = SimulationConfig(paths=20_000, seed=5, method="block",
                       rules=Rules(profit_target=400, max_drawdown=300, daily_loss_limit=150),
                       trades_per_day=4)
r = simulate([120.0, -80.0, 35.5, -240.0, 60.0, 15.0, -30.0, 210.0, -55.0, 5.0], cfg).to_dict()
r.pop("elapsed_seconds")
print(json.dumps({"threads": numba.get_num_threads(), "result": r}))
"""


def test_bit_identical_on_one_and_two_threads():
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
        proc = subprocess.run(
            [sys.executable, "-c", THREADS_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [o["threads"] for o in outputs] == [1, 2]
    assert outputs[0]["result"] == outputs[1]["result"]


def test_whole_days_keep_their_intraday_order():
    """A day that dips through the daily limit and recovers still breaches it."""
    history = TradeHistory(np.array([-600.0, 700.0, 50.0, 40.0]), days=np.array([1, 1, 2, 3]))
    result = simulate(history, SimulationConfig(paths=20_000, horizon=5, seed=1, rules=Rules(daily_loss_limit=500.0)))
    assert result.unit == "day"
    p_no_bad_day = (2 / 3) ** 5  # the breaching day is one of three, drawn five times
    assert result.probabilities["fail"].estimate == pytest.approx(1 - p_no_bad_day, abs=0.015)
    assert result.longest_losing_streak.max == 1


def test_auto_paths_stop_once_the_interval_is_tight_enough():
    config = SimulationConfig(
        paths="auto", auto_tolerance=0.02, seed=4, rules=Rules(profit_target=200, max_drawdown=300)
    )
    result = simulate(HISTORY, config)
    p = result.probabilities["pass"]
    assert p.ci95_high - p.ci95_low <= 0.02
    assert 10_000 <= result.paths < config.auto_max_paths
    assert result.paths % 10_000 == 0


def test_result_shapes_are_ready_to_chart():
    result = simulate(
        HISTORY, SimulationConfig(paths=4_000, horizon=1_000, seed=2, fan_points=200, rules=Rules(profit_target=900))
    )
    fan = result.equity_fan
    assert len(fan.steps) <= 201 and fan.steps[0] == 0 and fan.steps[-1] == 1_000
    for lower, upper in zip(("p5", "p25", "p50", "p75"), ("p25", "p50", "p75", "p95")):
        assert all(a <= b for a, b in zip(fan.bands[lower], fan.bands[upper]))
    h = result.histogram
    assert sum(h.counts) + h.below + h.above == result.paths
    assert len(h.edges) == len(h.counts) + 1
    pcts = list(result.final_pnl.percentiles.values())
    assert pcts == sorted(pcts)
    assert result.steps_to_pass is not None and result.steps_to_pass.count == result.probabilities["pass"].count
    assert result.config["seed"] == 2 and result.config["horizon"] == 1_000
    json.dumps(result.to_dict())  # JSON-ready


def test_a_seed_is_chosen_and_echoed_when_none_is_given():
    result = simulate(HISTORY, SimulationConfig(paths=100))
    again = simulate(HISTORY, SimulationConfig(paths=100, seed=result.seed))
    assert comparable(result) == comparable(again)


def test_cancellation_between_chunks(monkeypatch):
    monkeypatch.setattr(simulate_module, "PROGRESS_CHUNK", 100)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(simulate_module.SimulationCancelled):
        simulate(HISTORY, SimulationConfig(paths=1_000, seed=1), should_stop=should_stop)


@pytest.mark.slow
def test_a_million_paths_of_a_thousand_trades_stay_under_300_mb():
    """Peak RSS of the run itself: kernels are loaded first, as in a worker, and the
    kernel's high-water mark is reset after (Linux ``clear_refs``), so one-off
    compilation does not count."""
    script = (
        "import numpy as np\n"
        "from simulations.engine import Rules, SimulationConfig, simulate, warm_up\n"
        "warm_up()\n"
        "h = np.random.default_rng(0).normal(5, 100, 1000)\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "r = simulate(h, SimulationConfig(paths=1_000_000, horizon=1_000, seed=1,\n"
        "    rules=Rules(max_drawdown=20_000, daily_loss_limit=5_000), trades_per_day=10))\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(r.paths, hwm)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    paths, peak_kib = map(int, proc.stdout.split())
    assert paths == 1_000_000
    assert peak_kib / 1024 < 300, f"peak RSS {peak_kib / 1024:.0f} MB"


def test_the_serial_kernel_gives_the_same_numbers():
    config = SimulationConfig(
        paths=3_000,
        method="block",
        seed=13,
        trades_per_day=3,
        rules=Rules(profit_target=300, max_drawdown=400, daily_loss_limit=200),
    )
    assert comparable(simulate(HISTORY, config)) == comparable(simulate(HISTORY, config, parallel=False))


def test_no_nan_reaches_the_result_when_nothing_passes():
    result = simulate([-1.0, -2.0], SimulationConfig(paths=100, seed=1, rules=Rules(profit_target=1_000)))
    assert result.steps_to_pass.count == 0 and result.steps_to_pass.mean is None
    json.dumps(result.to_dict(), allow_nan=False)  # strict JSON: PostgreSQL's jsonb refuses NaN


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (10,), (9_999,), (4, 10_000), (200, 2_000), (5, 1)])
def test_percentiles_by_sorting_equal_numpys_bit_for_bit(shape):
    from simulations.engine.result import BAND_PERCENTILES, PERCENTILES
    from simulations.engine.stats import percentiles

    values = np.random.default_rng(len(shape) * 100 + shape[-1]).normal(size=shape) * 1_000
    values[..., ::3] = np.round(values[..., ::3])  # ties too
    for percents in (PERCENTILES, BAND_PERCENTILES, (0.5, 99.5)):
        np.testing.assert_array_equal(percentiles(values, percents), np.percentile(values, percents, axis=-1))


@pytest.mark.parametrize("seed", range(4))
def test_histogram_by_binary_search_equals_numpys(seed):
    from simulations.engine.stats import histogram

    rng = np.random.default_rng(seed)
    # whole numbers and whole-number edges: many values fall exactly on an edge
    values = rng.integers(0, 1_001, size=5_000).astype(np.float64)
    values[:3] = (-50.0, 1_050.0, 1_000.0)
    span = histogram(values, 10).edges[-1] - histogram(values, 10).edges[0]
    assert span.is_integer()
    h = histogram(values, int(span))  # bins one unit wide
    edges = np.array(h.edges)
    assert np.isin(edges, values).sum() > 500 and edges[-1] in values
    counts, numpy_edges = np.histogram(values, bins=int(span), range=(edges[0], edges[-1]))
    assert h.edges == numpy_edges.tolist() and h.counts == counts.tolist()
    assert h.below == int(np.count_nonzero(values < edges[0])) > 0
    assert h.above == int(np.count_nonzero(values > edges[-1])) > 0
    assert h.below + sum(h.counts) + h.above == values.size
    constant = histogram(np.full(10, 3.0), 4)  # no spread: a unit-wide range around it
    assert constant.counts == np.histogram(np.full(10, 3.0), bins=4, range=(2.5, 3.5))[0].tolist()


def test_a_histogram_of_values_beyond_floats_is_refused_as_numpy_refuses_it():
    from simulations.engine.stats import histogram

    beyond = np.array([0.0, 1.0, np.inf] * 100)
    with pytest.raises(ValueError, match="not finite"):
        np.histogram(beyond, bins=4)
    # the range's percentiles interpolate between infinities (NaN, with numpy's warning)
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="not finite"):
        histogram(beyond, 4)


WIDE_VECTORS_SCRIPT = """
import json, os
from simulations.engine import Rules, SimulationConfig, simulate
import llvmlite.binding as llvm
cfg = SimulationConfig(paths=5_000, seed=21, trades_per_day=4, stop_at_decision=False,
                       rules=Rules(profit_target=400, max_drawdown=300, daily_loss_limit=150))
r = simulate([120.0, -80.0, 35.5, -240.0, 60.0, 15.0, -30.0, 210.0, -55.0, 5.0], cfg).to_dict()
r.pop("elapsed_seconds")
print(json.dumps({"features": os.environ.get("NUMBA_CPU_FEATURES", ""),
                  "avx512": bool(llvm.get_host_cpu_features().get("avx512f")), "result": r}))
"""


def test_wide_vectors_are_asked_for_on_avx512_and_change_no_number():
    """512-bit vectors (engine/_jit.py) are a speed setting: same numbers bit for bit."""
    outputs = {}
    for run, extra in (
        ("wide", {"MONTECARLO_WIDE_VECTORS": "1"}),
        ("narrow", {"MONTECARLO_WIDE_VECTORS": "0"}),
        ("portable", {"NUMBA_CPU_NAME": "haswell"}),
    ):  # the image's target
        env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
        env.pop("NUMBA_CPU_FEATURES", None)
        if run != "portable":
            env.pop("NUMBA_CPU_NAME", None)
        proc = subprocess.run(
            [sys.executable, "-c", WIDE_VECTORS_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        outputs[run] = json.loads(proc.stdout.strip().splitlines()[-1])
    wide, narrow, portable = outputs["wide"], outputs["narrow"], outputs["portable"]
    assert narrow["features"] == "" and portable["features"] == ""  # a chosen target is kept
    assert wide["features"].endswith(",-prefer-256-bit") == wide["avx512"]
    assert wide["result"] == narrow["result"] == portable["result"]


def test_summary_sorted_on_threads_gives_the_same_numbers(monkeypatch):
    """A parallel run above the threshold shares its summary between the calling thread
    and the pool's; the numbers are those of the serial summary, bit for bit."""
    config = SimulationConfig(
        paths=40_000,
        horizon=30,
        seed=9,
        trades_per_day=5,
        fan_points=30,
        rules=Rules(profit_target=300, max_drawdown=400, daily_loss_limit=200),
    )
    names = []
    run_all = simulate_module._run_all

    def recording(work, pool):
        if pool is not None:
            work = {
                name: (lambda task=task: names.append(threading.current_thread().name) or task())
                for name, task in work.items()
            }
        return run_all(work, pool)

    monkeypatch.setattr(simulate_module, "_run_all", recording)
    threaded = simulate(HISTORY, config)
    caller = threading.current_thread().name
    assert len(names) == 7 and caller in names
    assert {n for n in names if n != caller} and all(n.startswith("mc-summary") for n in names if n != caller)
    serial = simulate(HISTORY, config, parallel=False)
    assert len(names) == 7  # a serial run keeps its summary on the calling thread
    assert comparable(threaded) == comparable(serial)
    monkeypatch.setattr(simulate_module, "PARALLEL_SUMMARY_MIN_VALUES", 10**12)
    assert comparable(simulate(HISTORY, config)) == comparable(threaded)
    assert len(names) == 7


def test_a_forked_child_gets_a_summary_pool_of_its_own():
    """A pool inherited through fork has no threads: the child must build its own."""
    parent_pool = simulate_module._summary_pool()
    assert parent_pool is not None  # the suite runs with numba's default of one thread per core
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        try:
            pool = simulate_module._summary_pool()
            ok = pool is not parent_pool and pool.submit(lambda: 42).result(timeout=10) == 42
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok" and status == 0


SPIN_SCRIPT = """
import os
import simulations.engine
print(os.environ.get("GOMP_SPINCOUNT", "-"))
"""


@pytest.mark.parametrize(
    "preset, expected", [({}, "10000"), ({"GOMP_SPINCOUNT": "123"}, "123"), ({"OMP_WAIT_POLICY": "active"}, "-")]
)
def test_openmp_threads_are_asked_to_spin_briefly_unless_the_process_chose(preset, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(preset, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", SPIN_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == expected


def test_paths_that_all_end_at_the_same_pnl_get_a_histogram():
    """A full permutation ends every path at the history's sum, equal up to rounding in
    P&L mode and only up to rounding in returns mode: the histogram takes one unit
    around it instead of failing for want of room for its bins."""
    trades = [60.1, -30.3, 70.7, 5.55, 0.01, -6.2]
    for mode, values in (("pnl", trades), ("returns", [t / 1000 for t in trades])):
        config = SimulationConfig.from_dict(
            {"paths": 1000, "method": "permutation", "starting_balance": 1000, "seed": 1, "mode": mode}
        )
        result = simulate(values, config)
        h = result.histogram
        final = result.final_pnl
        assert final.max - final.min < 1e-9 * 1000
        assert sum(h.counts) + h.below + h.above == 1000 and h.below == h.above == 0
        assert h.edges[0] < final.min <= final.max < h.edges[-1]
        assert h.edges[-1] - h.edges[0] == pytest.approx(1.0)


def test_a_daily_limit_larger_than_a_static_drawdown_applies_above_the_start():
    """Start 1,000, static max drawdown 5 (floor 995), daily limit 6: a day that opens at
    1,002 fails at 996, above the static floor. Two days, +2 and -6, in both orders
    (a permutation of the days): without the daily limit only the order that starts
    with the loss fails (994 <= 995); with it, both do."""
    trades = [{"pnl": 2, "date": "2026-06-01"}, {"pnl": -6, "date": "2026-06-02"}]
    history = TradeHistory.from_records(trades)
    base = {"paths": 2000, "method": "permutation", "starting_balance": 1000, "seed": 3}
    static_only = simulate(history, SimulationConfig.from_dict({**base, "rules": {"max_drawdown": 5}}))
    with_daily = simulate(
        history, SimulationConfig.from_dict({**base, "rules": {"max_drawdown": 5, "daily_loss_limit": 6}})
    )
    p_static = static_only.probabilities["fail"].estimate
    assert 0.4 < p_static < 0.6
    assert with_daily.probabilities["fail"].estimate == 1.0


@pytest.mark.parametrize(
    ("extra", "nested"),
    [
        ({"rules": {"profit_target": 300.0, "max_drawdown": 400.0}}, "steps_to_pass"),
        ({"phases": [{"rules": {"profit_target": 200.0}}, {"rules": {"profit_target": 100.0}}]}, "phase_pass"),
        ({"trades_per_day": 2, "payout": {"split": 0.8}}, "payouts"),
    ],
    ids=["rules", "phases", "payouts"],
)
def test_to_dict_is_asdict_of_the_result(extra, nested):
    """``to_dict`` walks the result its own way (no call per number): it must give what
    ``dataclasses.asdict`` gives, nested results, lists and None included."""
    result = simulate(HISTORY, SimulationConfig.from_dict({"paths": 300, "seed": 4, "horizon": 20, **extra}))
    data = result.to_dict()
    assert data == dataclasses.asdict(result)
    assert data[nested] is not None and type(data["equity_fan"]["bands"]["p50"]) is list
