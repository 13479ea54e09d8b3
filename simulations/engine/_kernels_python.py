"""Plain-Python twin of ``kernels.py``, written for clarity rather than speed.

It follows the same rules and the same random streams, so on small inputs it must
give exactly the numbers the numba kernels give; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .kernels import (
    BLOCK,
    BOOTSTRAP,
    FAILED_DAILY,
    FAILED_DRAWDOWN,
    FAILED_RUIN,
    FAILED_TIME,
    PASSED,
    PERMUTATION,
    UNDECIDED,
)

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class PathStream:
    """The random stream of one path: SplitMix64 started from (seed, path)."""

    def __init__(self, seed: int, path: int):
        self.state = mix64(mix64(seed & MASK) ^ ((path * GOLDEN) & MASK))

    def _next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK
        return mix64(self.state)

    def below(self, n: int) -> int:
        return ((self._next() >> 32) * n) >> 32

    def two_below(self, n: int) -> tuple[int, int]:
        """Two integers in [0, n) from one draw: the high half, then the low half."""
        z = self._next()
        return ((z >> 32) * n) >> 32, ((z & 0xFFFFFFFF) * n) >> 32

    def uniform(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)


@dataclass
class PathSummary:
    final_equity: float
    max_dd: float
    max_dd_pct: float
    outcome: int
    decided_at: int
    longest_streak: int
    ruined: bool
    band: list[float]


def simulate_path(
    *,
    seed: int,
    path: int,
    values: Sequence[float],
    units: Sequence[tuple[int, int]],
    units_per_day: int,
    method: int,
    block_size: float,
    horizon: int,
    compound: bool,
    start_balance: float,
    target: float = float("inf"),
    dd_limit: float = float("inf"),
    trailing: bool = False,
    daily_limit: float = float("inf"),
    ruin_level: float = float("-inf"),
    stop_at_decision: bool = True,
    checkpoints: Sequence[int] = (),
    end_of_day: bool = False,
    lock: float = float("inf"),
    mae: Sequence[float] | None = None,
    min_days: int = 0,
    max_days: int = 0,
    time_fails: bool = True,
    consistency: float = float("inf"),
    target_strict: bool = False,
    floors_strict: bool = False,
) -> PathSummary:
    """One path, every rule. ``target`` and ``lock`` are equity levels; ``dd_limit`` is
    the drawdown's distance from the start (static) or the high-water mark (trailing);
    ``mae`` the worst open loss of each trade (an amount, or a fraction in returns mode)."""
    rng = PathStream(seed, path)
    n = len(units)
    order = list(range(n))
    chosen: list[int] = []
    equity = peak = hwm = day_start = start_balance
    best_day = float("-inf")
    day = 1
    max_dd = max_dd_pct = 0.0
    outcome, decided_at, run, longest, ruined = UNDECIDED, -1, 0, 0, False
    equity_after: dict[int, float] = {}

    def below(x: float, floor: float) -> bool:
        return x < floor if floors_strict else x <= floor

    def drawdown_floor(mark: float) -> float:
        if dd_limit == float("inf"):
            return float("-inf")
        return min(mark - dd_limit, lock) if trailing else start_balance - dd_limit

    pending: list[int] = []
    for step in range(horizon):
        if method == BOOTSTRAP:
            if not pending:
                pending = list(rng.two_below(n))
            unit = pending.pop(0)
        elif method == PERMUTATION:
            j = step + rng.below(n - step)
            order[step], order[j] = order[j], order[step]
            unit = order[step]
        elif method == BLOCK:
            new_block = rng.uniform() < 1.0 / block_size
            unit = rng.below(n) if (step == 0 or new_block) else (chosen[-1] + 1) % n
        else:
            raise ValueError(method)
        chosen.append(unit)

        start, length = units[unit]
        stopped = False
        for k in range(start, start + length):
            x = values[k]
            before = equity
            floor_before = drawdown_floor(hwm)
            equity = equity * (1.0 + x) if compound else equity + x
            run = run + 1 if x < 0 else 0
            longest = max(longest, run)
            if equity > peak:
                peak = equity
            else:
                max_dd = max(max_dd, peak - equity)
                max_dd_pct = max(max_dd_pct, (peak - equity) / peak)
            if not end_of_day:
                hwm = max(hwm, equity)
            open_low = float("inf")
            if mae is not None:
                open_low = before * (1.0 - mae[k]) if compound else before - mae[k]
            low = min(equity, open_low)
            ruined = ruined or below(low, ruin_level)
            if outcome == UNDECIDED:
                reached = equity > target if target_strict else equity >= target
                best = max(best_day, equity - day_start)
                if ruined:
                    outcome = FAILED_RUIN
                elif below(equity, drawdown_floor(hwm)) or below(open_low, floor_before):
                    outcome = FAILED_DRAWDOWN
                elif below(low, day_start - daily_limit):
                    outcome = FAILED_DAILY
                elif reached and day >= min_days and best <= consistency * (equity - start_balance):
                    outcome = PASSED
                if outcome != UNDECIDED:
                    decided_at = step + 1
            if ruined or (outcome != UNDECIDED and stop_at_decision):
                stopped = True
                break
        equity_after[step + 1] = equity
        if stopped:
            break
        if units_per_day and (step + 1) % units_per_day == 0:
            best_day = max(best_day, equity - day_start)
            if end_of_day:
                hwm = max(hwm, equity)
            day_start = equity
            if outcome == UNDECIDED and 0 < max_days <= day:
                if time_fails:
                    outcome, decided_at = FAILED_TIME, step + 1
                break
            day += 1

    band = []
    last = start_balance
    for cp in checkpoints:
        last = equity_after.get(cp, equity if cp > max(equity_after, default=0) else last)
        band.append(last)
    return PathSummary(equity, max_dd, max_dd_pct, outcome, decided_at, longest, ruined, band)
