"""The engine's one entry point: ``simulate(history, config) -> SimulationResult``."""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from . import kernels, stats
from ._kernels_python import mix64
from ._typing import Float64Array, Int64Array
from .config import EngineLimits, Method, Mode, PayoutPolicy, Rules, SimulationConfig
from .errors import EngineValidationError
from .history import TradeHistory
from .result import Distribution, PayoutResult, SimulationResult

ENGINE_VERSION = "1"

# Paths per kernel call: progress is reported and cancellation checked between calls.
PROGRESS_CHUNK = 65_536
# paths="auto" adds paths in chunks of this size until the interval is tight enough.
AUTO_CHUNK = 10_000
# The summary's sorts (fan bands, distributions, histogram) are independent, and numpy
# drops the GIL while it sorts, so a parallel run sorts on numba's thread count of
# threads: at 10,000 paths x 1,000 the summary was ~30% of a run (2.9 of 10 ms), on one
# core while the other idled. Below this many values to sort, the hand-off costs more.
PARALLEL_SUMMARY_MIN_VALUES = 200_000

_METHOD_CODES: dict[Method, int] = {
    "bootstrap": kernels.BOOTSTRAP,
    "permutation": kernels.PERMUTATION,
    "block": kernels.BLOCK,
}

ProgressCallback = Callable[[int, int], None]


class SimulationCancelled(Exception):
    """Raised when ``should_stop`` asked the engine to give up between chunks."""


@dataclass(frozen=True)
class _Plan:
    """The validated, array-shaped form of a request, ready for the kernels."""

    values: Float64Array
    unit_start: Int64Array
    unit_len: Int64Array
    unit: str
    units_per_day: int
    horizon: int
    seed: int
    checkpoints: Int64Array
    samples: float  # trade samples the paths will draw at most: what the limits bound
    ignored: dict[str, str]  # settings given that do nothing for this input, and why


def simulate(
    history: TradeHistory | Sequence[float] | np.ndarray,
    config: SimulationConfig = SimulationConfig(),
    *,
    limits: EngineLimits = EngineLimits(),
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    parallel: bool = True,
) -> SimulationResult:
    """Resample ``history`` along many paths, replay ``config.rules``, summarise.

    A pure function of its inputs and ``config.seed``: the same seed gives
    bit-identical results on any number of threads. Memory grows with the number
    of paths (about 40 bytes each), never with paths x horizon. ``parallel=False``
    keeps the work on the calling thread (and releases the GIL), for callers that
    run simulations on several threads of their own.
    """
    started = time.perf_counter()
    if not isinstance(history, TradeHistory):
        history = TradeHistory(np.asarray(history, dtype=np.float64))
    config.validate(limits)
    plan = _plan(history, config, limits)
    r = config.rules
    phase_rules = _general_rules(config, history)
    general = phase_rules.shape[0] > 0
    seed_key, compound = np.uint64(mix64(plan.seed)), config.mode == "returns"
    units = (plan.unit_start, plan.unit_len)
    sampling = (
        np.int64(plan.units_per_day),
        np.int64(_METHOD_CODES[config.method]),
        np.float64(1.0 / config.block_size),
        np.int64(plan.horizon),
    )
    if general:  # the general kernel: every rule, one row per phase
        mae = history.mae if history.mae is not None else np.zeros(0)
        leading: tuple[Any, ...] = (plan.values, mae, *units, *sampling)
        payout = _payout_row(config.payout)
        stop = bool(config.stop_at_decision)
        trailing: tuple[Any, ...] = (seed_key, compound, stop, phase_rules, payout, plan.checkpoints)
    else:  # the fast kernels, which take the common rules as numbers
        leading = (plan.values, *units, bool((plan.unit_len == 1).all()), *sampling)
        trailing = (
            seed_key,
            compound,
            np.float64(config.starting_balance),
            np.float64(config.starting_balance + (r.profit_target if r.profit_target is not None else math.inf)),
            *_drawdown_floors(r, config.starting_balance),
            _or(r.daily_loss_limit, math.inf),
            _or(r.ruin_level, 0.0),
            bool(config.stop_at_decision),
            plan.checkpoints,
        )
    band_rows = config.band_paths if config.paths == "auto" else min(config.band_paths, int(config.paths))
    # checkpoint-major; not zeroed (≈ 0.1 ms at 2,000 x 200): the kernels write every
    # checkpoint of every band path they run, and only the paths run are summarised.
    bands = np.empty((plan.checkpoints.shape[0], band_rows), dtype=np.float64)

    auto = config.paths == "auto"
    total = config.auto_max_paths if auto else int(config.paths)
    step = AUTO_CHUNK if auto else PROGRESS_CHUNK
    kernel: Callable[..., None] = _kernel(general=general, parallel=parallel)
    # Allocated once and filled chunk by chunk through views: no concatenation copy.
    out = _allocate(total, general=general)
    done = 0
    while done < total:
        if should_stop is not None and should_stop():
            raise SimulationCancelled(f"stopped after {done} paths")
        n = min(step, total - done)
        view = {k: v[done : done + n] for k, v in out.items()}
        outputs = [view[name] for name in OUTPUTS + (GENERAL_OUTPUTS if general else ())]
        kernel(*leading, np.int64(done), *trailing, *outputs, bands)
        done += n
        if progress is not None:
            progress(done, total)
        if auto and _precise_enough({k: v[:done] for k, v in out.items()}, config):
            break

    merged = {k: v[:done] for k, v in out.items()}
    if not (np.isfinite(merged["final_equity"]).all() and np.isfinite(merged["max_dd"]).all()):
        # only compounding gets here: equity beyond a float (returns of thousands of
        # percent over a long horizon) has no distribution to report
        raise EngineValidationError.single("trades", "compounding these returns over the horizon overflows")
    return _summarise(merged, bands[:, : min(band_rows, done)], plan, config, started, parallel)


def warm_up(
    *,
    methods: Sequence[Method] = tuple(_METHOD_CODES),
    modes: Sequence[Mode] = ("pnl", "returns"),
    parallel: Sequence[bool] = (True, False),
    general: Sequence[bool] = (False, True),
) -> None:
    """Load (or compile) the kernels of these methods, modes, threadings and kernel
    families (the fast ones; the general one), default: every one a job can use, on a
    tiny input.

    Workers call this once per process after fork so no job pays compile time; the
    command line prepares only what its one run needs.
    """
    history = TradeHistory(np.array([1.0, -1.0, 2.0, -0.5]))
    for method in methods:
        for mode in modes:
            values = history.values / 100.0 if mode == "returns" else history.values
            for threaded in parallel:
                for rules in (Rules(floors_inclusive=False) if g else Rules() for g in general):
                    config = SimulationConfig(paths=8, method=method, mode=mode, seed=1, rules=rules)
                    simulate(TradeHistory(values), config, parallel=threaded)


def check(history: TradeHistory, config: SimulationConfig, limits: EngineLimits = EngineLimits()) -> float:
    """Raise :class:`EngineValidationError` for whatever ``simulate`` would refuse before
    it runs: the config, the history, and the two together (the sample limit, a
    permutation longer than the history, a daily limit without days). Cheap: no path
    is drawn, so a service can answer a bad request at once. Returns the trade samples
    the run draws at most (:func:`planned_samples`): the work a budget counts."""
    config.validate(limits)
    return _plan(history, config, limits).samples


def planned_samples(config: SimulationConfig, *, trades: int, units: int) -> float:
    """The trade samples a run draws at most: its paths (``auto``: at most
    ``auto_max_paths``) x the horizon in units (default: the history's ``units``) x the
    mean trades per unit. What ``max_samples`` bounds, and what a work budget counts."""
    max_paths = config.auto_max_paths if config.paths == "auto" else int(config.paths)
    horizon = config.horizon or units
    return float(max_paths) * horizon * (trades / max(units, 1))


def _plan(history: TradeHistory, config: SimulationConfig, limits: EngineLimits) -> _Plan:
    history.validate(mode=config.mode, max_history=limits.max_history)
    errors: dict[str, list[str]] = {}
    if config.unit == "day" and history.days is None:
        errors["unit"] = ["resampling days needs trades with dates"]
    by_day = config.unit == "day" or (config.unit == "auto" and history.days is not None)
    unit_start, unit_len = history.units(by_day and history.days is not None)
    n_units = int(unit_start.shape[0])
    units_per_day = 1 if by_day else (config.trades_per_day or 0)
    if units_per_day == 0:
        for name in config.needs_days():
            errors[name] = ["counts days: needs trades with dates, or trades_per_day"]
    horizon = config.horizon or n_units
    if config.method == "permutation" and horizon > n_units:
        errors["horizon"] = [f"permutation draws without replacement: at most {n_units} here"]
    if n_units >= 2**32:
        errors["trades"] = ["too many resampling units"]
    samples = planned_samples(config, trades=len(history), units=n_units)
    if samples > limits.max_samples:
        errors["paths"] = [f"paths x horizon is {samples:.3g} trade samples, above the limit {limits.max_samples:.3g}"]
    if errors:
        raise EngineValidationError(errors)
    seed = config.seed if config.seed is not None else secrets.randbits(63)
    return _Plan(
        values=history.values,
        unit_start=unit_start,
        unit_len=unit_len,
        unit="day" if by_day else "trade",
        units_per_day=units_per_day,
        horizon=horizon,
        seed=seed,
        checkpoints=_checkpoints(horizon, config.fan_points),
        samples=samples,
        ignored=_ignored_settings(config, by_day=by_day, units_per_day=units_per_day, horizon=horizon),
    )


_DEFAULTS = SimulationConfig()


def _ignored_settings(config: SimulationConfig, *, by_day: bool, units_per_day: int, horizon: int) -> dict[str, str]:
    """Settings given (not their defaults) that change nothing for this input, and why:
    reported in the result rather than echoed as if they had applied."""
    r = config.rules
    ignored: dict[str, str] = {}
    if config.trades_per_day is not None and by_day:
        ignored["trades_per_day"] = "the trades carry dates: a day is a date"
    if config.block_size != _DEFAULTS.block_size and config.method != "block":
        ignored["block_size"] = "only the block method draws blocks"
    if config.paths != "auto":
        for name in ("auto_tolerance", "auto_max_paths"):
            if getattr(config, name) != getattr(_DEFAULTS, name):
                ignored[name] = 'only paths "auto" uses it'
    if r.drawdown_type != _DEFAULTS.rules.drawdown_type and r.max_drawdown is None:
        ignored["rules.drawdown_type"] = "no max_drawdown is set"
    if not r.time_limit_fails and r.max_trading_days is None:
        ignored["rules.time_limit_fails"] = "no max_trading_days is set"
    if r.max_trading_days is not None and units_per_day and horizon < r.max_trading_days * units_per_day:
        ignored["rules.max_trading_days"] = f"the horizon ends first, after {horizon // units_per_day} days"
    return ignored


def _general_rules(config: SimulationConfig, history: TradeHistory) -> Float64Array:
    """The general kernel's rules, one row per phase (``kernels.R_*``); empty when no rule
    needs it and there are no phases nor excursions, so the fast kernels run (they give
    the same numbers for the rest)."""
    if not config.general() and history.mae is None:
        return np.zeros((0, kernels.R_FIELDS))
    rows = np.zeros((len(config.phase_list()), kernels.R_FIELDS))
    for row, (r, balance) in zip(rows, config.phase_list(), strict=True):
        static_floor, trail = _drawdown_floors(r, balance)
        row[kernels.R_START] = balance
        row[kernels.R_TARGET] = balance + r.profit_target if r.profit_target is not None else math.inf
        row[kernels.R_STATIC_FLOOR], row[kernels.R_TRAIL] = static_floor, trail
        row[kernels.R_DAILY] = _or(r.daily_loss_limit, math.inf)
        row[kernels.R_RUIN] = _or(r.ruin_level, 0.0)
        row[kernels.R_END_OF_DAY] = r.trailing_basis == "end_of_day"
        row[kernels.R_LOCK] = math.inf if r.trailing_lock is None else balance + r.trailing_lock
        row[kernels.R_MIN_DAYS] = r.min_trading_days or 0
        row[kernels.R_MAX_DAYS] = r.max_trading_days or 0
        row[kernels.R_TIME_FAILS] = r.time_limit_fails
        row[kernels.R_CONSISTENCY] = math.inf if r.consistency is None else r.consistency
        row[kernels.R_TARGET_STRICT] = not r.target_inclusive
        row[kernels.R_FLOORS_STRICT] = not r.floors_inclusive
    return rows


def _payout_row(policy: PayoutPolicy | None) -> Float64Array:
    """The general kernel's payout policy (``kernels.P_*``); empty: no payouts."""
    if policy is None:
        return np.zeros(0)
    row = np.zeros(kernels.P_FIELDS)
    row[kernels.P_SPLIT] = policy.split
    row[kernels.P_CADENCE] = policy.cadence_days or 0
    row[kernels.P_MIN] = policy.min_payout
    row[kernels.P_MAX] = math.inf if policy.max_payout is None else policy.max_payout
    row[kernels.P_BUFFER] = policy.buffer
    row[kernels.P_WIN_DAYS] = policy.min_winning_days
    row[kernels.P_WIN_PROFIT] = policy.winning_day_profit
    row[kernels.P_AFTER] = {"shift": kernels.AFTER_SHIFT, "keep": kernels.AFTER_KEEP,
                            "lock_at_start": kernels.AFTER_LOCK}[policy.after_payout]  # fmt: skip
    return row


def _payout_result(out: dict[str, np.ndarray], policy: PayoutPolicy | None) -> PayoutResult | None:
    if policy is None:
        return None
    paid = out["paid"]
    any_payout = out["payouts"] > 0
    return PayoutResult(
        paid=stats.distribution(paid),
        payouts=stats.distribution(out["payouts"]),
        any_payout=stats.probability(any_payout),
        days_to_first_payout=stats.distribution(out["first_payout"][any_payout]),
        breach=stats.probability(out["outcome"] >= kernels.FAILED),
        firm_net=None if policy.fees is None else stats.distribution(policy.fees - paid),
    )


def _checkpoints(horizon: int, points: int) -> Int64Array:
    """Up to ``points`` evenly spaced step counts in 1..horizon, always ending at horizon."""
    raw = np.linspace(1, horizon, num=min(points, horizon)).round().astype(np.int64)
    return np.unique(raw)


# The per-path outputs every kernel writes, in its argument order, and those the general
# kernel writes after them.
OUTPUTS = ("final_equity", "max_dd", "max_dd_pct", "outcome", "decided_at", "longest_streak", "ruined")
GENERAL_OUTPUTS = ("phases_passed", "paid", "payouts", "first_payout")


def _kernel(*, general: bool, parallel: bool) -> Callable[..., None]:
    if general:
        return kernels.simulate_paths_general if parallel else kernels.simulate_paths_general_serial
    return kernels.simulate_paths if parallel else kernels.simulate_paths_serial


def _allocate(n: int, *, general: bool) -> dict[str, np.ndarray]:
    """The per-path outputs; the phases passed and payouts only for the general kernel, which counts them."""
    out: dict[str, np.ndarray] = {
        "final_equity": np.empty(n, dtype=np.float64),
        "max_dd": np.empty(n, dtype=np.float64),
        "max_dd_pct": np.empty(n, dtype=np.float64),
        "outcome": np.empty(n, dtype=np.int8),
        "decided_at": np.empty(n, dtype=np.int32),
        "longest_streak": np.empty(n, dtype=np.int32),
        "ruined": np.empty(n, dtype=np.bool_),
    }
    if general:
        out["phases_passed"] = np.empty(n, dtype=np.int8)
        out["paid"] = np.empty(n, dtype=np.float64)
        out["payouts"] = np.empty(n, dtype=np.int32)
        out["first_payout"] = np.empty(n, dtype=np.int32)
    return out


def _precise_enough(out: dict[str, np.ndarray], config: SimulationConfig) -> bool:
    """paths="auto": is the 95% interval of the pass (or ruin) probability narrow enough?"""
    n = int(out["outcome"].shape[0])
    if config.rules.profit_target is not None or config.phases:
        k = int(np.count_nonzero(out["outcome"] == kernels.PASSED))
    else:
        k = int(np.count_nonzero(out["ruined"]))
    low, high = stats.wilson_interval(k, n)
    return high - low <= config.auto_tolerance


def _summarise(
    out: dict[str, np.ndarray],
    bands: Float64Array,
    plan: _Plan,
    config: SimulationConfig,
    started: float,
    parallel: bool,
) -> SimulationResult:
    balance = float(config.starting_balance)
    final_pnl = out["final_equity"]
    final_pnl -= balance  # in place: one array of this size fewer
    passed = out["outcome"] == kernels.PASSED
    probabilities = {
        "profit": stats.probability(final_pnl > 0),
        "ruin": stats.probability(out["ruined"]),
        "pass": stats.probability(passed),
        "fail": stats.probability(out["outcome"] >= kernels.FAILED),
        "undecided": stats.probability(out["outcome"] == kernels.UNDECIDED),
    }
    phase_pass = (
        [stats.probability(out["phases_passed"] > k) for k in range(len(config.phases))] if config.phases else None
    )
    by_outcome = np.bincount(out["outcome"], minlength=max(kernels.FAILURE_CAUSES) + 1)
    failure_causes = {name: int(by_outcome[code]) for code, name in kernels.FAILURE_CAUSES.items()}
    effective = config.with_seed(plan.seed).to_dict()
    effective.update(horizon=plan.horizon, unit=plan.unit)
    middle = bands.shape[0] // 2
    targeted = config.rules.profit_target is not None or bool(config.phases)
    # Read-only on the per-path arrays; each sorts its own copy, or its own rows of the bands.
    # Listed so that two threads' round-robin shares take one half of the fan each.
    work: dict[str, Callable[[], Any]] = {
        "fan_head": lambda: bands[:middle].sort(axis=1),
        "fan_tail": lambda: bands[middle:].sort(axis=1),
        "distributions": lambda: stats.distributions(
            final_pnl, out["max_dd"], out["max_dd_pct"], out["longest_streak"]
        ),
        "histogram": lambda: stats.histogram(final_pnl, config.histogram_bins),
        "steps_to_pass": lambda: stats.distribution(out["decided_at"][passed]) if targeted else None,
        "days_to_pass": lambda: (
            stats.distribution(-(-out["decided_at"][passed] // plan.units_per_day))
            if targeted and plan.units_per_day
            else None
        ),
        "payouts": lambda: _payout_result(out, config.payout),
    }
    threaded = parallel and 5 * final_pnl.size + bands.size >= PARALLEL_SUMMARY_MIN_VALUES
    done = _run_all(work, _summary_pool() if threaded else None)
    pnl_d, dd_d, dd_pct_d, streak_d = done["distributions"]
    return SimulationResult(
        paths=int(final_pnl.shape[0]),
        horizon=plan.horizon,
        unit=plan.unit,
        seed=plan.seed,
        config=effective,
        final_pnl=pnl_d,
        final_return=_scaled(pnl_d, 1.0 / balance),
        max_drawdown=dd_d,
        max_drawdown_pct=dd_pct_d,
        longest_losing_streak=streak_d,
        steps_to_pass=done["steps_to_pass"],
        days_to_pass=done["days_to_pass"],
        probabilities=probabilities,
        failure_causes=failure_causes,
        phase_pass=phase_pass,
        payouts=done["payouts"],
        ignored_settings=plan.ignored,
        equity_fan=stats.equity_fan([int(s) for s in plan.checkpoints], bands, balance, presorted=True),
        histogram=done["histogram"],
        elapsed_seconds=time.perf_counter() - started,
        versions={"engine": ENGINE_VERSION, "numpy": np.__version__, "numba": numba.__version__},
    )


_summary_pools: dict[int, ThreadPoolExecutor | None] = {}


def _summary_pool() -> ThreadPoolExecutor | None:
    """This process's helper threads for the summary: one fewer than numba's threads,
    since the calling thread takes a share too (None with one thread). Keyed by pid: a
    pool inherited through fork has no threads behind it and would never run a task."""
    pid = os.getpid()
    if pid not in _summary_pools:
        _summary_pools.clear()
        helpers = numba.config.NUMBA_NUM_THREADS - 1
        _summary_pools[pid] = (
            ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="mc-summary") if helpers > 0 else None
        )
    return _summary_pools[pid]


def _run_all(work: dict[str, Callable[[], Any]], pool: ThreadPoolExecutor | None) -> dict[str, Any]:
    """Every task's result by name. With a pool, the tasks are dealt round-robin into one
    share per thread: the calling thread runs the first share while the pool's threads
    run the others: handing every task to the pool and waiting was slower, each task a
    wake-up and a GIL handoff (docs/performance.md)."""
    if pool is None:
        return {name: task() for name, task in work.items()}
    names = list(work)
    threads = numba.config.NUMBA_NUM_THREADS  # the pool's helpers and the calling thread
    shares = [names[i::threads] for i in range(threads)]

    def run(share: list[str]) -> dict[str, Any]:
        return {name: work[name]() for name in share}

    helpers = [pool.submit(run, share) for share in shares[1:] if share]
    done = run(shares[0])
    for helper in helpers:
        done.update(helper.result())
    return {name: done[name] for name in names}


def _scaled(d: Distribution, factor: float) -> Distribution:
    """The distribution of ``x * factor`` (factor > 0) from that of ``x``, without a new array."""

    def scale(v: float | None) -> float | None:
        return None if v is None else v * factor

    return Distribution(
        count=d.count,
        mean=scale(d.mean),
        std=scale(d.std),
        min=scale(d.min),
        max=scale(d.max),
        percentiles={k: scale(v) for k, v in d.percentiles.items()},
    )


def _drawdown_floors(rules: Rules, balance: float) -> tuple[np.float64, np.float64]:
    """(static floor, trailing distance): the drawdown rule as the kernels take it."""
    limit = rules.max_drawdown
    if limit is None:
        return np.float64(-math.inf), np.float64(math.inf)
    if rules.drawdown_type == "trailing":
        return np.float64(-math.inf), np.float64(limit)
    return np.float64(balance - limit), np.float64(math.inf)


def _or(value: float | None, default: float) -> np.float64:
    return np.float64(default if value is None else value)
