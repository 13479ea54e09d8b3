"""Plain-Python twin of ``kernels.py``, written for clarity rather than speed.

It follows the same rules and the same random streams, so on small inputs it must
give exactly the numbers the numba kernels give; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    phases_passed: int = 0
    paid: float = 0.0
    payouts: int = 0
    first_payout: int = -1


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
    phases: Sequence[Mapping[str, Any]] = (),
    payout: Mapping[str, Any] | None = None,
) -> PathSummary:
    """One path, every rule. ``target`` and ``lock`` are equity levels; ``dd_limit`` is
    the drawdown's distance from the start (static) or the high-water mark (trailing);
    ``mae`` the worst open loss of each trade (an amount, or a fraction in returns mode).
    ``phases``: one mapping of those rule arguments (and ``start_balance``) per phase,
    instead of the arguments themselves; equity is reported as the first phase's
    balance plus the current account's P&L. ``payout``: the policy, by ``PayoutPolicy``'s
    field names (``cadence_days`` None: on request)."""
    one = dict(
        start_balance=start_balance, target=target, dd_limit=dd_limit, trailing=trailing, daily_limit=daily_limit,
        ruin_level=ruin_level, end_of_day=end_of_day, lock=lock, min_days=min_days, max_days=max_days,
        time_fails=time_fails, consistency=consistency, target_strict=target_strict, floors_strict=floors_strict,
    )  # fmt: skip
    stages = [{**one, **p} for p in phases] if phases else [one]
    rng = PathStream(seed, path)
    n = len(units)
    order = list(range(n))
    chosen: list[int] = []
    phase = 0
    rules = stages[0]
    base = rules["start_balance"]
    equity = peak = hwm = day_start = rules["start_balance"]
    best_day = float("-inf")
    day = 1
    max_dd = max_dd_pct = 0.0
    outcome, decided_at, run, longest, ruined, passed = UNDECIDED, -1, 0, 0, False, 0
    paid, payouts, first_payout, wins = 0.0, 0, -1, 0
    equity_after: dict[int, float] = {}

    def below(x: float, floor: float) -> bool:
        return x < floor if rules["floors_strict"] else x <= floor

    def drawdown_floor(mark: float) -> float:
        if rules["dd_limit"] == float("inf"):
            return float("-inf")
        if rules["trailing"]:
            return min(mark - rules["dd_limit"], rules["lock"])
        return rules["start_balance"] - rules["dd_limit"]

    def shown(x: float) -> float:
        return x - rules["start_balance"] + base

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
        stopped = next_phase = False
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
            if not rules["end_of_day"]:
                hwm = max(hwm, equity)
            open_low = float("inf")
            if mae is not None:
                open_low = before * (1.0 - mae[k]) if compound else before - mae[k]
            low = min(equity, open_low)
            ruined = ruined or below(low, rules["ruin_level"])
            if outcome == UNDECIDED:
                target_met = equity > rules["target"] if rules["target_strict"] else equity >= rules["target"]
                best = max(best_day, equity - day_start)
                profit = equity - rules["start_balance"]
                if ruined:
                    outcome = FAILED_RUIN
                elif below(equity, drawdown_floor(hwm)) or below(open_low, floor_before):
                    outcome = FAILED_DRAWDOWN
                elif below(low, day_start - rules["daily_limit"]):
                    outcome = FAILED_DAILY
                elif target_met and day >= rules["min_days"] and best <= rules["consistency"] * profit:
                    passed += 1
                    if passed < len(stages):
                        next_phase = True
                        break
                    outcome = PASSED
                if outcome != UNDECIDED:
                    decided_at = step + 1
            if ruined or (outcome != UNDECIDED and stop_at_decision):
                stopped = True
                break
        at_day_end = bool(units_per_day) and (step + 1) % units_per_day == 0
        if next_phase:
            phase += 1
            rules = stages[phase]
            equity = peak = hwm = day_start = rules["start_balance"]
            best_day = float("-inf")
            day = 0 if at_day_end else 1
        equity_after[step + 1] = shown(equity)
        if stopped:
            break
        if at_day_end:
            if not next_phase:
                best_day = max(best_day, equity - day_start)
                if rules["end_of_day"]:
                    hwm = max(hwm, equity)
                if payout is not None and outcome == UNDECIDED:
                    profit = equity - day_start
                    if profit > 0 and profit >= payout.get("winning_day_profit", 0.0):
                        wins += 1
                    cadence = payout.get("cadence_days") or 1
                    if day % cadence == 0 and wins >= payout.get("min_winning_days", 0):
                        room = equity - rules["start_balance"] - payout.get("buffer", 0.0)
                        gross = min(room, payout.get("max_payout") or float("inf"))
                        if gross > 0 and gross >= payout.get("min_payout", 0.0):
                            equity -= gross
                            peak -= gross
                            after = payout.get("after_payout", "shift")
                            if after == "shift":
                                hwm -= gross
                            elif after == "lock_at_start":
                                rules = {**rules, "lock": rules["start_balance"]}
                            paid += payout["split"] * gross
                            payouts += 1
                            first_payout = day if first_payout < 0 else first_payout
                            wins = 0
                            equity_after[step + 1] = shown(equity)
                day_start = equity
                if outcome == UNDECIDED and 0 < rules["max_days"] <= day:
                    if rules["time_fails"]:
                        outcome, decided_at = FAILED_TIME, step + 1
                    break
            day += 1

    band = []
    last = base
    final = shown(equity)
    for cp in checkpoints:
        last = equity_after.get(cp, final if cp > max(equity_after, default=0) else last)
        band.append(last)
    return PathSummary(
        final, max_dd, max_dd_pct, outcome, decided_at, longest, ruined, band, passed, paid, payouts, first_payout
    )
