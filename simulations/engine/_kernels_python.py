"""Plain-Python twin of ``kernels.py``, written for clarity rather than speed.

It follows the same rules and the same random streams, so on small inputs it must
give exactly the numbers the numba kernels give; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .kernels import BLOCK, BOOTSTRAP, FAILED, PASSED, PERMUTATION, UNDECIDED

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
) -> PathSummary:
    rng = PathStream(seed, path)
    n = len(units)
    order = list(range(n))
    chosen: list[int] = []
    equity = peak = day_start = start_balance
    max_dd = max_dd_pct = 0.0
    outcome, decided_at, run, longest, ruined = UNDECIDED, -1, 0, 0, False
    equity_after: dict[int, float] = {}

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
        for x in values[start:start + length]:
            equity = equity * (1.0 + x) if compound else equity + x
            run = run + 1 if x < 0 else 0
            longest = max(longest, run)
            if equity > peak:
                peak = equity
            else:
                max_dd = max(max_dd, peak - equity)
                max_dd_pct = max(max_dd_pct, (peak - equity) / peak)
            ruined = ruined or equity <= ruin_level
            if outcome == UNDECIDED:
                floor = peak - dd_limit if trailing else start_balance - dd_limit
                if ruined or equity <= floor or equity <= day_start - daily_limit:
                    outcome, decided_at = FAILED, step + 1
                elif equity >= target:
                    outcome, decided_at = PASSED, step + 1
            if ruined or (outcome != UNDECIDED and stop_at_decision):
                stopped = True
                break
        if units_per_day and (step + 1) % units_per_day == 0:
            day_start = equity
        equity_after[step + 1] = equity
        if stopped:
            break

    band = []
    last = start_balance
    for cp in checkpoints:
        last = equity_after.get(cp, equity if cp > max(equity_after, default=0) else last)
        band.append(last)
    return PathSummary(equity, max_dd, max_dd_pct, outcome, decided_at, longest, ruined, band)
