"""The numba kernels against their plain-Python twin, path by path."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulations.engine import kernels
from simulations.engine._kernels_python import mix64, simulate_path
from simulations.engine.history import TradeHistory
from simulations.engine.simulation import GENERAL_OUTPUTS, OUTPUTS

HISTORY = [120.0, -80.0, 35.5, -240.0, 60.0, 15.0, -30.0, 210.0, -55.0, 5.0]
RETURNS = [x / 10_000 for x in HISTORY]
DAYS = [1, 1, 1, 2, 2, 3, 4, 4, 4, 5]
METHODS = {"bootstrap": kernels.BOOTSTRAP, "permutation": kernels.PERMUTATION, "block": kernels.BLOCK}


def run_kernel(
    values,
    units,
    units_per_day,
    method,
    horizon,
    *,
    paths,
    seed,
    compound=False,
    target=math.inf,
    static_floor=-math.inf,
    trail=math.inf,
    daily=math.inf,
    ruin=0.0,
    stop=True,
    block_size=3.0,
    checkpoints=(2, 5),
    band_rows=4,
    first_path=0,
    mae=(),
    general=None,
    phases=(),
    payout=None,
):
    """The parallel kernel on these inputs. ``general`` (fields of ``R_*``, lower case) or
    ``phases`` (one such mapping per phase, over the scalar rules) runs the general kernel,
    with ``payout`` (fields of ``P_*``, lower case) if given."""
    scalars = dict(
        start=10_000.0, target=target, static_floor=static_floor, trail=trail, daily=daily, ruin=ruin
    )  # fmt: skip
    stages = [dict(general or {})] if general is not None else list(phases)
    phase_rules = np.array([phase_row(**{**scalars, **stage}) for stage in stages]).reshape(-1, kernels.R_FIELDS)
    starts = np.array([s for s, _ in units], dtype=np.int64)
    lens = np.array([n for _, n in units], dtype=np.int64)
    out = {
        "final_equity": np.empty(paths),
        "max_dd": np.empty(paths),
        "max_dd_pct": np.empty(paths),
        "outcome": np.empty(paths, np.int8),
        "decided_at": np.empty(paths, np.int32),
        "longest_streak": np.empty(paths, np.int32),
        "ruined": np.empty(paths, np.bool_),
        "phases_passed": np.zeros(paths, np.int8),
        "paid": np.zeros(paths),
        "payouts": np.zeros(paths, np.int32),
        "first_payout": np.zeros(paths, np.int32),
    }
    cps = np.array(checkpoints, dtype=np.int64)
    bands = np.zeros((len(cps), band_rows))
    values = np.asarray(values, dtype=np.float64)
    outputs = [out[name] for name in OUTPUTS]
    sampling = (np.int64(units_per_day), np.int64(method), np.float64(1.0 / block_size), np.int64(horizon))
    seeding = (np.int64(first_path), np.uint64(mix64(seed)), compound)
    if phase_rules.shape[0]:
        mae = np.asarray(mae, dtype=np.float64)
        kernels.simulate_paths_general(
            values,
            mae,
            starts,
            lens,
            *sampling,
            *seeding,
            stop,
            phase_rules,
            payout_row(payout),
            cps,
            *outputs,
            *(out[name] for name in GENERAL_OUTPUTS),
            bands,
        )
        return out, bands
    scalar_rules = (np.float64(10_000.0), *map(np.float64, (target, static_floor, trail, daily, ruin)))
    kernels.simulate_paths(
        values, starts, lens, bool((lens == 1).all()), *sampling, *seeding, *scalar_rules, stop, cps, *outputs, bands
    )
    return out, bands


def payout_row(policy):
    """The kernel's payout policy from ``P_*`` fields in lower case (None: no payouts)."""
    if policy is None:
        return np.zeros(0)
    row = np.zeros(kernels.P_FIELDS)
    row[kernels.P_MAX] = math.inf
    for name, value in policy.items():
        row[getattr(kernels, f"P_{name.upper()}")] = value
    return row


def phase_row(*, start, target, static_floor, trail, daily, ruin, mae=0, **general):
    """One row of the general kernel's rules: the scalar rules, and the general ones off
    unless given (``end_of_day``, ``lock``, ``min_days`` ...: ``R_*`` in lower case)."""
    row = np.zeros(kernels.R_FIELDS)
    values = dict(
        start=start, target=target, static_floor=static_floor, trail=trail, daily=daily, ruin=ruin, lock=math.inf,
        time_fails=1.0, consistency=math.inf,
    )  # fmt: skip
    values.update(general)
    for name, value in values.items():
        row[getattr(kernels, f"R_{name.upper()}")] = value
    return row


def inputs(name, compound, by_day, horizon):
    """A case's history (amounts or returns), its units, horizon and units per day."""
    values = RETURNS if compound else HISTORY
    history = TradeHistory(np.array(values), np.array(DAYS) if by_day else None)
    starts, lens = history.units(by_day)
    units = list(zip(starts.tolist(), lens.tolist()))
    return values, units, len(units) if name == "permutation" else horizon, 1 if by_day else 3


CASES = list(
    itertools.product(
        METHODS.items(),
        [False, True],  # compound
        [False, True],  # whole days as units
        [
            {},
            {"target": 10_300.0, "static_floor": 9_700.0},
            {"target": 10_200.0, "trail": 250.0, "daily": 200.0},
            {"ruin": 9_800.0, "stop": False, "target": 10_100.0},
        ],
    )
)


@pytest.mark.parametrize("method_item,compound,by_day,rules", CASES)
def test_kernel_matches_python_twin_path_by_path(method_item, compound, by_day, rules):
    name, method = method_item
    values, units, horizon, units_per_day = inputs(name, compound, by_day, 17)
    paths, seed = 40, 2024
    cps = (1, 2, 5, horizon)
    out, bands = run_kernel(
        values,
        units,
        units_per_day,
        method,
        horizon,
        paths=paths,
        seed=seed,
        compound=compound,
        checkpoints=cps,
        **rules,
    )

    dd_limit = 10_000.0 - rules.get("static_floor", -math.inf)
    twin_rules = dict(
        target=rules.get("target", math.inf),
        dd_limit=rules.get("trail", dd_limit) if "trail" in rules else dd_limit,
        trailing="trail" in rules,
        daily_limit=rules.get("daily", math.inf),
        ruin_level=rules.get("ruin", 0.0),
        stop_at_decision=rules.get("stop", True),
    )
    for p in range(paths):
        twin = simulate_path(
            seed=seed,
            path=p,
            values=values,
            units=units,
            units_per_day=units_per_day,
            method=method,
            block_size=3.0,
            horizon=horizon,
            compound=compound,
            start_balance=10_000.0,
            checkpoints=cps,
            **twin_rules,
        )
        assert out["final_equity"][p] == pytest.approx(twin.final_equity, rel=1e-12)
        assert out["max_dd"][p] == pytest.approx(twin.max_dd, rel=1e-12, abs=1e-9)
        assert out["max_dd_pct"][p] == pytest.approx(twin.max_dd_pct, rel=1e-9, abs=1e-12)
        assert out["outcome"][p] == twin.outcome
        assert out["decided_at"][p] == twin.decided_at
        assert out["longest_streak"][p] == twin.longest_streak
        assert bool(out["ruined"][p]) == twin.ruined
        if p < bands.shape[1]:
            assert bands[:, p].tolist() == pytest.approx(twin.band, rel=1e-12)


def test_a_path_does_not_depend_on_its_neighbours():
    """Path k gives the same numbers alone, in a batch, or at an offset."""
    units = [(i, 1) for i in range(len(HISTORY))]
    batch, _ = run_kernel(HISTORY, units, 0, kernels.BLOCK, 50, paths=1000, seed=9)
    tail, _ = run_kernel(HISTORY, units, 0, kernels.BLOCK, 50, paths=10, seed=9, first_path=990)
    for key in batch:
        np.testing.assert_array_equal(batch[key][990:], tail[key])


def test_permutation_uses_every_trade_exactly_once():
    """Without rules that stop a path, every permutation path ends at the history's sum."""
    units = [(i, 1) for i in range(len(HISTORY))]
    out, _ = run_kernel(HISTORY, units, 0, kernels.PERMUTATION, len(HISTORY), paths=500, seed=3, ruin=-math.inf)
    np.testing.assert_allclose(out["final_equity"], 10_000.0 + sum(HISTORY), rtol=1e-12)
    assert len(set(np.round(out["max_dd"], 6))) > 10  # yet the order differs between paths


def _one_path_at_a_time(values, horizon, per_day, compound, rules, stop, cps, paths, first, band_rows):
    outputs = [
        np.zeros(paths),
        np.zeros(paths),
        np.zeros(paths),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.bool_),
    ]
    bands = np.full((cps.shape[0], band_rows), np.nan)
    units = np.arange(values.shape[0], dtype=np.int64)
    for i in range(paths):
        numbers = kernels._run_path(
            first + i,
            values,
            units,
            np.ones_like(units),
            True,
            per_day,
            kernels.BOOTSTRAP,
            0.0,
            horizon,
            np.uint64(mix64(11)),
            compound,
            10_000.0,
            *rules,
            stop,
            cps,
            bands,
            np.empty(0, np.int64),
        )
        for output, number in zip(outputs, numbers):
            output[i] = number
    return outputs, bands


def _in_lanes(values, horizon, per_day, compound, rules, stop, cps, paths, first, band_rows):
    outputs = [
        np.zeros(paths),
        np.zeros(paths),
        np.zeros(paths),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.int64),
        np.zeros(paths, np.bool_),
    ]
    bands = np.full((cps.shape[0], band_rows), np.nan)
    units = np.arange(values.shape[0], dtype=np.int64)
    kernels._simulate_range(
        0,
        paths,
        np.empty(0, np.int64),
        values,
        units,
        np.ones_like(units),
        True,
        per_day,
        kernels.BOOTSTRAP,
        0.0,
        horizon,
        first,
        np.uint64(mix64(11)),
        compound,
        10_000.0,
        *rules,
        stop,
        cps,
        *outputs,
        bands,
    )
    return outputs, bands


@pytest.mark.parametrize(
    "compound,stop,per_day,trailing,daily",
    list(itertools.product([False, True], [False, True], [0, 7], [False, True], [False, True])),
)
def test_the_simd_lanes_give_the_one_path_loop_numbers_bit_for_bit(compound, stop, per_day, trailing, daily):
    """Bootstrap over single trades runs LANES paths side by side; every output, the
    fan included, must equal the one-path-at-a-time loop's, whatever rule decides."""
    rng = np.random.default_rng(1)
    values = rng.normal(0.001, 0.02, 37) if compound else rng.normal(5.0, 100.0, 37)
    rules = (
        11_000.0,
        -math.inf if trailing else 9_200.0,
        800.0 if trailing else math.inf,
        400.0 if daily else math.inf,
        8_500.0,
    )  # target, static floor, trail, daily limit, ruin
    cps = np.array([3, 10, 50, 120, 199], dtype=np.int64)
    # 150 paths from path 5: two full lane blocks and a partial one; 100 of them draw the fan.
    args = (values, 200, per_day, compound, rules, stop, cps, 150, 5, 105)
    (lanes, lane_bands), (loop, loop_bands) = _in_lanes(*args), _one_path_at_a_time(*args)
    for name, a, b in zip(("equity", "max dd", "max dd %", "outcome", "decided at", "streak", "ruined"), lanes, loop):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(lane_bands, loop_bands)
    assert len(set(loop[3])) >= 2  # the rules decided differently along different paths


MAE = [30.0, 95.0, 0.0, 260.0, 10.0, 40.0, 35.0, 5.0, 120.0, 0.0]


@pytest.mark.parametrize("method_item,compound,by_day,rules", CASES)
def test_the_general_kernel_with_its_rules_off_gives_the_fast_kernels_numbers(method_item, compound, by_day, rules):
    _, method = method_item
    values = RETURNS if compound else HISTORY
    history = TradeHistory(np.array(values), np.array(DAYS) if by_day else None)
    starts, lens = history.units(by_day)
    units = list(zip(starts.tolist(), lens.tolist()))
    horizon = len(units) if method == kernels.PERMUTATION else 17
    common = dict(paths=300, seed=8, compound=compound, checkpoints=(1, 3, horizon), **rules)
    fast, fast_bands = run_kernel(values, units, 1 if by_day else 3, method, horizon, **common)
    slow, slow_bands = run_kernel(values, units, 1 if by_day else 3, method, horizon, general={}, **common)
    for name in OUTPUTS:  # the general kernel alone counts phases and payouts
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
    np.testing.assert_array_equal(fast_bands, slow_bands)


GENERAL_CASES = [
    # (kernel arguments, general rules (R_* fields; "mae": the trades carry excursions), the twin's arguments)
    ({"trail": 250.0}, {"end_of_day": 1}, {"dd_limit": 250.0, "trailing": True, "end_of_day": True}),
    ({"trail": 200.0}, {"lock": 10_050.0}, {"dd_limit": 200.0, "trailing": True, "lock": 10_050.0}),
    (
        {"trail": 200.0, "target": 10_150.0},
        {"end_of_day": 1, "lock": 10_000.0, "mae": 1},
        {"dd_limit": 200.0, "trailing": True, "end_of_day": True, "lock": 10_000.0, "mae": MAE, "target": 10_150.0},
    ),
    (
        {"static_floor": 9_800.0, "daily": 150.0, "ruin": 9_700.0},
        {"mae": 1},
        {"dd_limit": 200.0, "daily_limit": 150.0, "ruin_level": 9_700.0, "mae": MAE},
    ),
    ({"target": 10_100.0}, {"min_days": 3}, {"target": 10_100.0, "min_days": 3}),
    (
        {"target": 10_300.0, "static_floor": 9_700.0},
        {"max_days": 2},
        {"target": 10_300.0, "dd_limit": 300.0, "max_days": 2},
    ),
    ({"target": 10_300.0}, {"max_days": 2, "time_fails": 0}, {"target": 10_300.0, "max_days": 2, "time_fails": False}),
    ({"target": 10_100.0}, {"consistency": 0.5}, {"target": 10_100.0, "consistency": 0.5}),
    (
        {"target": 10_120.0, "static_floor": 9_760.0, "daily": 240.0},
        {"target_strict": 1, "floors_strict": 1},
        {"target": 10_120.0, "dd_limit": 240.0, "daily_limit": 240.0, "target_strict": True, "floors_strict": True},
    ),
    (
        {"ruin": 9_800.0, "stop": False, "target": 10_100.0},
        {"min_days": 2, "consistency": 0.7, "mae": 1},
        {
            "ruin_level": 9_800.0,
            "stop_at_decision": False,
            "target": 10_100.0,
            "min_days": 2,
            "consistency": 0.7,
            "mae": MAE,
        },
    ),
]


@pytest.mark.parametrize(
    "method_item,compound,by_day,case",
    list(itertools.product(METHODS.items(), [False, True], [False, True], range(len(GENERAL_CASES)))),
)
def test_the_general_kernel_matches_the_python_twin_path_by_path(method_item, compound, by_day, case):
    name, method = method_item
    rules, on, twin_rules = GENERAL_CASES[case]
    values, units, horizon, units_per_day = inputs(name, compound, by_day, 17)
    mae = [m / 10_000 for m in MAE] if compound else MAE
    twin_rules = {**twin_rules, "mae": mae} if "mae" in twin_rules else twin_rules
    paths, seed = 60, 77
    cps = (1, 2, 5, horizon)
    out, bands = run_kernel(
        values,
        units,
        units_per_day,
        method,
        horizon,
        paths=paths,
        seed=seed,
        compound=compound,
        checkpoints=cps,
        mae=mae if "mae" in on else (),
        general=on,
        **rules,
    )
    for p in range(paths):
        twin = simulate_path(
            seed=seed,
            path=p,
            values=values,
            units=units,
            units_per_day=units_per_day,
            method=method,
            block_size=3.0,
            horizon=horizon,
            compound=compound,
            start_balance=10_000.0,
            checkpoints=cps,
            **{"ruin_level": 0.0, **twin_rules},
        )
        assert out["final_equity"][p] == pytest.approx(twin.final_equity, rel=1e-12), p
        assert out["max_dd"][p] == pytest.approx(twin.max_dd, rel=1e-12, abs=1e-9)
        assert out["outcome"][p] == twin.outcome, p
        assert out["decided_at"][p] == twin.decided_at, p
        assert bool(out["ruined"][p]) == twin.ruined
        if p < bands.shape[1]:
            assert bands[:, p].tolist() == pytest.approx(twin.band, rel=1e-12)


@pytest.mark.parametrize("case", range(len(GENERAL_CASES)))
def test_each_general_rule_changes_some_paths(case):
    """The cases above are not vacuous: with the general rules on, some path's outcome or
    decision step differs from the same kernel with them off."""
    rules, on, _ = GENERAL_CASES[case]
    units = [(i, 1) for i in range(len(HISTORY))]
    common = dict(paths=200, seed=77, checkpoints=(1, 17), **rules)
    off, _ = run_kernel(HISTORY, units, 3, kernels.BOOTSTRAP, 17, general={}, **common)
    with_rules, _ = run_kernel(
        HISTORY, units, 3, kernels.BOOTSTRAP, 17, mae=MAE if "mae" in on else (), general=on, **common
    )
    changed = (off["outcome"] != with_rules["outcome"]) | (off["decided_at"] != with_rules["decided_at"])
    assert 0 < changed.sum() < 200, changed.sum()


PHASES = [
    # (per-phase kernel rows over the scalar rules, the twin's phases)
    (
        [{"target": 10_150.0, "static_floor": 9_800.0}, {"start": 5_000.0, "target": 5_080.0, "static_floor": 4_850.0}],
        [
            {"target": 10_150.0, "dd_limit": 200.0},
            {"start_balance": 5_000.0, "target": 5_080.0, "dd_limit": 150.0},
        ],
    ),
    (
        [
            {"target": 10_100.0, "trail": 200.0, "min_days": 2},
            {"target": 10_100.0, "trail": 150.0, "end_of_day": 1, "lock": 10_000.0, "max_days": 3},
            {"target": 10_060.0, "daily": 120.0, "consistency": 0.8},
        ],
        [
            {"target": 10_100.0, "dd_limit": 200.0, "trailing": True, "min_days": 2},
            {"target": 10_100.0, "dd_limit": 150.0, "trailing": True, "end_of_day": True, "lock": 10_000.0,
             "max_days": 3},
            {"target": 10_060.0, "daily_limit": 120.0, "consistency": 0.8},
        ],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "method_item,compound,by_day,case",
    list(itertools.product(METHODS.items(), [False, True], [False, True], range(len(PHASES)))),
)
def test_phases_in_the_general_kernel_match_the_python_twin_path_by_path(method_item, compound, by_day, case):
    name, method = method_item
    rows, twin_phases = PHASES[case]
    values, units, horizon, units_per_day = inputs(name, compound, by_day, 30)
    paths, seed, cps = 80, 31, (1, 2, 5, horizon)
    out, bands = run_kernel(
        values, units, units_per_day, method, horizon, paths=paths, seed=seed, compound=compound, checkpoints=cps,
        phases=rows,
    )  # fmt: skip
    for p in range(paths):
        twin = simulate_path(
            seed=seed, path=p, values=values, units=units, units_per_day=units_per_day, method=method,
            block_size=3.0, horizon=horizon, compound=compound, start_balance=10_000.0, checkpoints=cps,
            ruin_level=0.0, phases=twin_phases,
        )  # fmt: skip
        assert out["final_equity"][p] == pytest.approx(twin.final_equity, rel=1e-12), p
        assert (out["outcome"][p], out["decided_at"][p], out["phases_passed"][p]) == (
            twin.outcome,
            twin.decided_at,
            twin.phases_passed,
        ), p
        assert out["max_dd"][p] == pytest.approx(twin.max_dd, rel=1e-12, abs=1e-9)
        if p < bands.shape[1]:
            assert bands[:, p].tolist() == pytest.approx(twin.band, rel=1e-12)
    if not compound:  # the cases are not vacuous: paths end in different phases
        assert len(set(out["phases_passed"].tolist())) >= 2


PAYOUTS = [
    # (scalar rules, the kernel's policy (P_* in lower case), the twin's rules, the twin's policy)
    ({}, {"split": 0.8}, {}, {"split": 0.8}),
    (
        {"trail": 250.0},
        {"split": 0.9, "cadence": 3, "min": 50.0, "max": 150.0, "buffer": 100.0},
        {"dd_limit": 250.0, "trailing": True},
        {"split": 0.9, "cadence_days": 3, "min_payout": 50.0, "max_payout": 150.0, "buffer": 100.0},
    ),
    (
        {"trail": 200.0, "daily": 200.0},
        {"split": 0.7, "win_days": 2, "win_profit": 30.0, "after": kernels.AFTER_LOCK},
        {"dd_limit": 200.0, "trailing": True, "daily_limit": 200.0},
        {"split": 0.7, "min_winning_days": 2, "winning_day_profit": 30.0, "after_payout": "lock_at_start"},
    ),
    (
        {"trail": 300.0},
        {"split": 1.0, "cadence": 2, "after": kernels.AFTER_KEEP},
        {"dd_limit": 300.0, "trailing": True},
        {"split": 1.0, "cadence_days": 2, "after_payout": "keep"},
    ),
]


@pytest.mark.parametrize(
    "method_item,compound,by_day,case",
    list(itertools.product(METHODS.items(), [False, True], [False, True], range(len(PAYOUTS)))),
)
def test_payouts_in_the_general_kernel_match_the_python_twin_path_by_path(method_item, compound, by_day, case):
    name, method = method_item
    rules, policy, twin_rules, twin_policy = PAYOUTS[case]
    values, units, horizon, units_per_day = inputs(name, compound, by_day, 30)
    if compound:  # the same policies in returns: amounts scaled to the account's 10,000
        values = [v * 5 for v in values]
    paths, seed, cps = 80, 13, (1, 2, 5, horizon)
    out, bands = run_kernel(
        values, units, units_per_day, method, horizon, paths=paths, seed=seed, compound=compound, checkpoints=cps,
        general={}, payout=policy, **rules,
    )  # fmt: skip
    for p in range(paths):
        twin = simulate_path(
            seed=seed, path=p, values=values, units=units, units_per_day=units_per_day, method=method,
            block_size=3.0, horizon=horizon, compound=compound, start_balance=10_000.0, checkpoints=cps,
            ruin_level=0.0, payout=twin_policy, **twin_rules,
        )  # fmt: skip
        assert out["final_equity"][p] == pytest.approx(twin.final_equity, rel=1e-12), p
        assert out["paid"][p] == pytest.approx(twin.paid, rel=1e-12, abs=1e-9), p
        assert (out["payouts"][p], out["first_payout"][p], out["outcome"][p], out["decided_at"][p]) == (
            twin.payouts,
            twin.first_payout,
            twin.outcome,
            twin.decided_at,
        ), p
        assert out["max_dd"][p] == pytest.approx(twin.max_dd, rel=1e-12, abs=1e-9)
        if p < bands.shape[1]:
            assert bands[:, p].tolist() == pytest.approx(twin.band, rel=1e-12)
    if not compound and name != "permutation":  # not vacuous: some paths are paid, not all
        assert 0 < (out["payouts"] > 0).sum() < paths, out["payouts"]


def test_paying_out_every_profit_at_each_close_gives_the_closed_form():
    """Paid out whenever above the start, the balance is reflected at the start: the
    withdrawals add up to the running maximum of the closes' P&L (0 if never above), and
    the balance ends at the start plus the P&L less that maximum. Checked path by path
    against the same paths without payouts, whose fan holds every close."""
    units = [(i, 1) for i in range(len(HISTORY))]
    horizon, paths, split = 24, 300, 0.8
    closes = tuple(range(1, horizon + 1))
    common = dict(paths=paths, seed=5, checkpoints=closes, band_rows=paths)
    plain, fan = run_kernel(HISTORY, units, 1, kernels.BOOTSTRAP, horizon, general={}, **common)
    paid, _ = run_kernel(HISTORY, units, 1, kernels.BOOTSTRAP, horizon, general={}, payout={"split": split}, **common)
    pnl = fan - 10_000.0  # closes x paths
    high = np.maximum(pnl.max(axis=0), 0.0)
    assert paid["paid"] == pytest.approx(split * high, abs=1e-9)
    assert paid["final_equity"] == pytest.approx(plain["final_equity"] - high, abs=1e-9)
    assert (paid["payouts"] > 0).tolist() == (high > 0).tolist()
    assert 0 < (high > 0).sum() < paths
