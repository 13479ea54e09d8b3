"""numba kernels: one path per call of ``_run_path`` (or LANES side by side), many per ``simulate_paths``.

Randomness is derived, not drawn: each path owns a SplitMix64 stream seeded from
``(seed, path index)``, so a path's numbers do not depend on which thread runs it,
how paths are chunked, or how many other paths there are. That is what makes the
results bit-identical on any thread count (numba's own ``np.random`` inside
``prange`` is not reproducible). Nothing of size paths x horizon is ever allocated.

Each kernel has a plain-Python twin in ``_kernels_python.py``; tests compare them.
The SIMD lane kernel (``_bootstrap_lanes``, the common case) is compared with the
one-path loop it replaces, output by output.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit, prange

# Method codes shared with the Python twin and ``simulate``.
BOOTSTRAP = 0
PERMUTATION = 1
BLOCK = 2

# Path outcomes. A failed path's outcome names the rule that failed it: every code
# from FAILED up is a failure (``outcome >= FAILED``), one per cause.
UNDECIDED = 0
PASSED = 1
FAILED = FAILED_RUIN = 2
FAILED_DRAWDOWN = 3  # the static or trailing max drawdown
FAILED_DAILY = 4  # the daily loss limit
FAILED_TIME = 5  # the time limit (max trading days) reached undecided
FAILURE_CAUSES = {FAILED_RUIN: "ruin", FAILED_DRAWDOWN: "max_drawdown", FAILED_DAILY: "daily_loss_limit",
                  FAILED_TIME: "time_limit"}

# The general kernel (``_rules_path``) takes the rules as one row per evaluation phase
# (one row without phases), a float each; an empty array means no rule needs it and
# the fast kernels run.
R_START = 0  # the phase's starting balance
R_TARGET = 1  # the equity that passes (inf: none)
R_STATIC_FLOOR = 2  # the static drawdown's floor (-inf: none)
R_TRAIL = 3  # the trailing drawdown's distance (inf: none)
R_DAILY = 4  # the daily loss limit (inf: none)
R_RUIN = 5  # the ruin level
R_END_OF_DAY = 6  # 1: the trailing high-water mark moves at a day's close only
R_LOCK = 7  # the level (equity) at which the trailing floor stops rising; inf: none
R_MIN_DAYS = 8  # trading days before a pass counts; 0: none
R_MAX_DAYS = 9  # the time limit in trading days; 0: none
R_TIME_FAILS = 10  # 1: undecided at the time limit is a failure
R_CONSISTENCY = 11  # the best day's profit at most this share of the total profit; inf: none
R_TARGET_STRICT = 12  # 1: the target passes only when exceeded
R_FLOORS_STRICT = 13  # 1: a floor fails only when equity goes below it
R_FIELDS = 14

# A funded account's payout policy, a float each (``payout`` of the general kernel; an
# empty array: no payouts). Amounts are the policy's; levels are computed per path.
P_SPLIT = 0  # the trader's share of a withdrawal
P_CADENCE = 1  # a payout is due every this-many trading days; 0: at any close (on request)
P_MIN = 2  # the smallest withdrawal taken
P_MAX = 3  # the largest withdrawal (inf: none)
P_BUFFER = 4  # kept above the starting balance
P_WIN_DAYS = 5  # winning days since the last payout before the next one
P_WIN_PROFIT = 6  # a day's profit that makes it a winning day (0: any profit)
P_AFTER = 7  # what a withdrawal does to the trailing floor: AFTER_*
P_FIELDS = 8
AFTER_SHIFT = 0  # the high-water mark drops with the balance: the floor keeps its distance
AFTER_KEEP = 1  # the floor stays where it was
AFTER_LOCK = 2  # the floor stops at the starting balance

# Paths per parallel work item. Fixed, so scratch is reused within a chunk and the
# split of work never depends on the thread count.
CHUNK = 256

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_INV_2_53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective 64-bit hash."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def path_state(seed_key: np.uint64, path: np.int64) -> np.uint64:
    """Start of path ``path``'s stream; ``seed_key`` is ``mix64(seed)``."""
    return mix64(seed_key ^ (np.uint64(path) * _GOLDEN))


@njit(cache=True)
def next_below(state: np.uint64, n: np.int64) -> tuple[np.uint64, np.int64]:
    """Advance the stream; an integer in [0, n) (multiply-shift, n < 2**32)."""
    state = state + _GOLDEN
    z = mix64(state)
    return state, np.int64(((z >> _S32) * np.uint64(n)) >> _S32)


@njit(cache=True)
def next_uniform(state: np.uint64) -> tuple[np.uint64, float]:
    """Advance the stream; a float in [0, 1) with 53 random bits."""
    state = state + _GOLDEN
    z = mix64(state)
    return state, np.float64(z >> _S11) * _INV_2_53


@njit(inline="always")  # inlined into the path loop and into the SIMD lane loop
def _apply_trade(x, compound, equity, peak, max_dd, pct_dd, pct_peak, run, longest):
    """Book one trade. Branch-free: these compares flip at random, and a mispredicted
    branch per trade would cost more than the arithmetic.

    The largest drawdown in percent is kept as the pair (drawdown, peak) it came
    from and divided once at the end: dd / peak > pct_dd / pct_peak is tested as
    dd * pct_peak > pct_dd * peak (peaks are > 0), so no trade pays a division (a
    vector division was the lane kernel's slowest instruction)."""
    equity = equity * (1.0 + x) if compound else equity + x
    run = (run + 1) * (x < 0.0)
    longest = max(longest, run)
    peak = max(peak, equity)
    dd = peak - equity
    max_dd = max(max_dd, dd)
    deeper = dd * pct_peak > pct_dd * peak
    pct_dd = dd if deeper else pct_dd
    pct_peak = peak if deeper else pct_peak
    return equity, peak, max_dd, pct_dd, pct_peak, run, longest


@njit(cache=True)
def _decide(equity, peak, day_start, static_floor, trail, daily_limit, ruin_level, target, ruined, outcome, decided_at, step):
    """The rare path, taken only when some threshold was crossed: which rule, if any.
    Several floors crossed by one trade: ruin, then the drawdown, then the daily limit."""
    ruined = ruined or equity <= ruin_level
    if outcome == UNDECIDED:
        if ruined:
            outcome = FAILED_RUIN
        elif equity <= static_floor or equity <= peak - trail:
            outcome = FAILED_DRAWDOWN
        elif equity <= day_start - daily_limit:
            outcome = FAILED_DAILY
        elif equity >= target:
            outcome = PASSED
        if outcome != UNDECIDED:
            decided_at = step + 1
    return ruined, outcome, decided_at


@njit(inline="always")
def _draw(method, state, step, n_units, restart_p, u, spare, perm):
    """The unit a path resamples at ``step``, from its stream: (state, unit, spare)."""
    if method == BOOTSTRAP:
        # One 64-bit draw serves two steps: high half now, low half next step.
        if step & 1 == 0:
            state = state + _GOLDEN
            z = mix64(state)
            u = np.int64(((z >> _S32) * np.uint64(n_units)) >> _S32)
            spare = z & _LOW32
        else:
            u = np.int64((spare * np.uint64(n_units)) >> _S32)
    elif method == PERMUTATION:
        state, j = next_below(state, n_units - step)
        j += step
        tmp = perm[step]
        perm[step] = perm[j]
        perm[j] = tmp
        u = perm[step]
    else:  # stationary bootstrap: a new block with probability 1/blockSize
        state, r = next_uniform(state)
        if step == 0 or r < restart_p:
            state, u = next_below(state, n_units)
        else:
            u += 1
            if u == n_units:
                u = 0
    return state, u, spare


@njit(inline="always")
def _below(equity, floor, strict):
    """Has equity crossed a floor: at or below it (inclusive), or below it (strict)?"""
    return equity < floor if strict else equity <= floor


@njit(cache=True)
def _run_path(
    path, values, unit_start, unit_len, single_trades, units_per_day, method, restart_p,
    horizon, seed_key, compound, start_balance, target, static_floor, trail, daily_limit,
    ruin_level, stop_at_decision, checkpoints, bands, perm,
):
    """Replay the rules along one resampled path; returns its summary numbers.

    Dispatches to a copy of the path loop specialised (inlined with constant
    arguments) per method and P&L mode: those loop-invariant branches cost about a
    third of the throughput when they stay in the hot loop.
    """
    if compound:
        if method == BOOTSTRAP:
            return _path_loop(BOOTSTRAP, True, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)
        if method == PERMUTATION:
            return _path_loop(PERMUTATION, True, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)
        return _path_loop(BLOCK, True, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)
    if method == BOOTSTRAP:
        return _path_loop(BOOTSTRAP, False, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)
    if method == PERMUTATION:
        return _path_loop(PERMUTATION, False, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)
    return _path_loop(BLOCK, False, path, values, unit_start, unit_len, single_trades, units_per_day, restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints, bands, perm)


@njit(inline="always")
def _path_loop(
    method, compound, path, values, unit_start, unit_len, single_trades, units_per_day,
    restart_p, horizon, seed_key, start_balance, target, static_floor, trail, daily_limit,
    ruin_level, stop_at_decision, checkpoints, bands, perm,
):
    """The path loop. ``static_floor`` and ``trail`` encode the drawdown rule (the
    unused one is -inf / +inf), so every breach test is "equity at or below a floor"."""
    state = path_state(seed_key, path)
    n_units = unit_start.shape[0]
    band_row = path if path < bands.shape[1] else -1
    n_cp = checkpoints.shape[0]

    equity = start_balance
    peak = start_balance
    day_start = start_balance
    max_dd = 0.0
    pct_dd = 0.0  # the deepest drawdown in percent is pct_dd / pct_peak
    pct_peak = 1.0
    outcome = UNDECIDED
    decided_at = -1
    run = 0
    longest = 0
    ruined = False
    next_cp = 0
    # only the paths that draw the fan stop at its checkpoints
    cp_step = checkpoints[0] if n_cp > 0 and band_row >= 0 else -1
    # Every floor that does not move with the peak, folded into one number so the
    # common case costs two compares; refreshed when a day starts.
    fixed_floor = max(static_floor, max(ruin_level, day_start - daily_limit))
    u = 0
    spare = np.uint64(0)
    if method == PERMUTATION:
        for k in range(n_units):
            perm[k] = k

    # Steps run in segments between events (a day boundary, a fan checkpoint), so the
    # per-step loop carries only the trade itself and its rule check.
    step = 0
    stop = False
    next_day = units_per_day if units_per_day > 0 else horizon + 1
    while step < horizon:
        seg_end = min(horizon, next_day)
        if 0 < cp_step < seg_end:
            seg_end = cp_step
        while step < seg_end:
            state, u, spare = _draw(method, state, step, n_units, restart_p, u, spare, perm)

            if single_trades:  # the common case, without the inner loop
                equity, peak, max_dd, pct_dd, pct_peak, run, longest = _apply_trade(
                    values[u], compound, equity, peak, max_dd, pct_dd, pct_peak, run, longest
                )
                if (equity <= max(fixed_floor, peak - trail)) | (equity >= target):
                    ruined, outcome, decided_at = _decide(
                        equity, peak, day_start, static_floor, trail, daily_limit, ruin_level,
                        target, ruined, outcome, decided_at, step,
                    )
                    # A ruined account cannot trade on; a decided one stops if the rules say so.
                    stop = ruined or (outcome != UNDECIDED and stop_at_decision)
            else:
                first = unit_start[u]
                for k in range(first, first + unit_len[u]):
                    equity, peak, max_dd, pct_dd, pct_peak, run, longest = _apply_trade(
                        values[k], compound, equity, peak, max_dd, pct_dd, pct_peak, run, longest
                    )
                    if (equity <= max(fixed_floor, peak - trail)) | (equity >= target):
                        ruined, outcome, decided_at = _decide(
                            equity, peak, day_start, static_floor, trail, daily_limit, ruin_level,
                            target, ruined, outcome, decided_at, step,
                        )
                        stop = ruined or (outcome != UNDECIDED and stop_at_decision)
                        if stop:
                            break

            step += 1
            if stop:
                break
        if stop:
            break
        if step == next_day:
            day_start = equity
            next_day += units_per_day
            fixed_floor = max(static_floor, max(ruin_level, day_start - daily_limit))
        if step == cp_step:
            if band_row >= 0:
                bands[next_cp, band_row] = equity
            next_cp += 1
            cp_step = checkpoints[next_cp] if next_cp < n_cp else -1

    if band_row >= 0:  # a stopped account keeps its last equity
        for q in range(next_cp, n_cp):
            bands[q, band_row] = equity
    return equity, max_dd, pct_dd / pct_peak, outcome, decided_at, longest, ruined


@njit(cache=True)
def _rules_path(
    path, values, mae, unit_start, unit_len, units_per_day, method, restart_p, horizon, seed_key,
    compound, stop_at_decision, phase_rules, payout, checkpoints, bands, perm,
):
    """One path under every rule, phase by phase: the general kernel, run when a rule
    the fast kernels do not replay is on, or there are phases (``phase_rules``, one row
    each). It draws the same units as ``_path_loop`` (same streams), checks every rule
    after every trade (no threshold shortcut), and keeps the rules' high-water mark apart
    from the drawdown statistics' peak, since an end-of-day mark moves only at a close.

    A path that passes a phase other than the last starts the next with the next step,
    on a fresh account: its balance, marks and day count. Equity is reported as the
    first phase's balance plus the current account's P&L, so one fan and one final P&L
    distribution serve every phase.

    With a ``payout`` policy (``P_*``), a day's close may pay the trader: the withdrawal
    leaves the balance, and the drawdown statistics' peak drops with it (a payout is not
    a drawdown). Returns the summary numbers, the phases passed, the trader's total,
    the payouts taken and the trading day of the first (-1: none)."""
    n_phases = phase_rules.shape[0]
    has_payout = payout.shape[0] > 0
    paid = 0.0
    n_payouts = 0
    first_payout = -1
    wins = 0  # winning days since the last payout
    has_mae = mae.shape[0] > 0
    base = phase_rules[0, R_START]
    phase = 0
    start_balance, target, static_floor, trail, daily_limit, ruin_level, end_of_day, lock, min_days, max_days, \
        time_fails, consistency, target_strict, strict = _phase(phase_rules, 0)

    state = path_state(seed_key, path)
    n_units = unit_start.shape[0]
    band_row = path if path < bands.shape[1] else -1
    n_cp = checkpoints.shape[0]
    equity = start_balance
    peak = start_balance
    hwm = start_balance  # the trailing rule's high-water mark
    day_start = start_balance
    best_day = -np.inf  # the best closed day's profit
    day = 1  # trading days of this phase so far, the current one included
    max_dd = 0.0
    pct_dd = 0.0
    pct_peak = 1.0
    outcome = UNDECIDED
    decided_at = -1
    passed = 0
    run = 0
    longest = 0
    ruined = False
    next_cp = 0
    cp_step = checkpoints[0] if n_cp > 0 and band_row >= 0 else -1
    u = 0
    spare = np.uint64(0)
    if method == PERMUTATION:
        for k in range(n_units):
            perm[k] = k

    step = 0
    stop = False
    next_day = units_per_day if units_per_day > 0 else horizon + 1
    while step < horizon:
        state, u, spare = _draw(method, state, step, n_units, restart_p, u, spare, perm)
        first = unit_start[u]
        next_phase = False
        for k in range(first, first + unit_len[u]):
            before = equity
            floor_before = max(static_floor, min(hwm - trail, lock))
            equity, peak, max_dd, pct_dd, pct_peak, run, longest = _apply_trade(
                values[k], compound, equity, peak, max_dd, pct_dd, pct_peak, run, longest
            )
            if not end_of_day:
                hwm = max(hwm, equity)
            low = equity  # the trade's worst equity: its close, or its excursion's low
            open_low = np.inf
            if has_mae:
                open_low = before * (1.0 - mae[k]) if compound else before - mae[k]
                low = min(low, open_low)
            ruined = ruined or _below(low, ruin_level, strict)
            if outcome == UNDECIDED:
                if ruined:
                    outcome = FAILED_RUIN
                elif _below(equity, max(static_floor, min(hwm - trail, lock)), strict) or _below(
                    open_low, floor_before, strict
                ):
                    outcome = FAILED_DRAWDOWN
                elif _below(low, day_start - daily_limit, strict):
                    outcome = FAILED_DAILY
                elif (equity > target if target_strict else equity >= target) and day >= min_days and (
                    max(best_day, equity - day_start) <= consistency * (equity - start_balance)
                ):
                    passed += 1
                    if passed < n_phases:
                        next_phase = True  # this account is done; the next one opens with the next step
                        break
                    outcome = PASSED
                if outcome != UNDECIDED:
                    decided_at = step + 1
            stop = ruined or (outcome != UNDECIDED and stop_at_decision)
            if stop:
                break
        step += 1
        if stop:
            break
        if next_phase:
            phase += 1
            start_balance, target, static_floor, trail, daily_limit, ruin_level, end_of_day, lock, min_days, \
                max_days, time_fails, consistency, target_strict, strict = _phase(phase_rules, phase)
            equity = start_balance
            peak = start_balance
            hwm = start_balance
            day_start = start_balance
            best_day = -np.inf
            day = 0  # the day boundary below, if it falls here, does not count a day of this phase
            if step != next_day:
                day = 1
        elif step == next_day:
            best_day = max(best_day, equity - day_start)
            if end_of_day:
                hwm = max(hwm, equity)
            if has_payout and outcome == UNDECIDED:
                profit = equity - day_start
                if profit > 0.0 and profit >= payout[P_WIN_PROFIT]:
                    wins += 1
                cadence = np.int64(payout[P_CADENCE])
                if (cadence == 0 or day % cadence == 0) and wins >= payout[P_WIN_DAYS]:
                    gross = min(equity - start_balance - payout[P_BUFFER], payout[P_MAX])
                    if gross > 0.0 and gross >= payout[P_MIN]:
                        equity -= gross
                        peak -= gross
                        if payout[P_AFTER] == AFTER_SHIFT:
                            hwm -= gross
                        elif payout[P_AFTER] == AFTER_LOCK:
                            lock = start_balance
                        paid += payout[P_SPLIT] * gross
                        n_payouts += 1
                        if first_payout < 0:
                            first_payout = day
                        wins = 0
            day_start = equity
            if outcome == UNDECIDED and 0 < max_days <= day:
                # the evaluation is over: failed, or undecided if the firm says so
                if time_fails:
                    outcome = FAILED_TIME
                    decided_at = step
                stop = True
        if step == next_day:
            next_day += units_per_day
            day += 1
        if step == cp_step:
            bands[next_cp, band_row] = equity - start_balance + base
            next_cp += 1
            cp_step = checkpoints[next_cp] if next_cp < n_cp else -1
        if stop:
            break

    if band_row >= 0:  # a stopped account keeps its last equity
        for q in range(next_cp, n_cp):
            bands[q, band_row] = equity - start_balance + base
    return (equity - start_balance + base, max_dd, pct_dd / pct_peak, outcome, decided_at, longest, ruined, passed,
            paid, n_payouts, first_payout)


@njit(inline="always")
def _phase(phase_rules, p):
    """Phase ``p``'s rules, as the path loop uses them."""
    r = phase_rules[p]
    return (
        r[R_START], r[R_TARGET], r[R_STATIC_FLOOR], r[R_TRAIL], r[R_DAILY], r[R_RUIN], r[R_END_OF_DAY] != 0.0,
        r[R_LOCK], np.int64(r[R_MIN_DAYS]), np.int64(r[R_MAX_DAYS]), r[R_TIME_FAILS] != 0.0, r[R_CONSISTENCY],
        r[R_TARGET_STRICT] != 0.0, r[R_FLOORS_STRICT] != 0.0,
    )


# Lanes: the common case (iid bootstrap of single trades) runs LANES paths side by
# side, step by step, so the compiler turns the per-path work into SIMD
# instructions. The layout is chosen for that:
# - the per-lane state is one 2-D array (separate arrays defeat LLVM's alias checks);
# - the random numbers are drawn for all lanes in a loop of integer arithmetic alone
#   (vectorised: 64-bit multiplies are AVX-512 instructions), then the trade values
#   are fetched in a loop of plain loads (a gather inside it kept it scalar:
#   ~17 instructions a sample);
# - a stopped lane draws index n_units, a 0.0 appended to the values (a no-op trade);
# - the rule check only counts lanes past a threshold (an integer, no fast-math
#   needed), and the rare path finds which;
# - ``error_model="numpy"`` drops the zero-division branch.
# Same random streams, same arithmetic in the same order as ``_path_loop``: the
# numbers are bit-identical (tests compare the two).
LANES = 64
# Per-lane state, one row per field. The trading state exists twice (rows _A and _B):
# a pair of steps reads one copy and writes the other, so the lanes' state is loaded
# and stored once per two trades, and the copy read still holds the state before the
# pair for the rare lanes that crossed a threshold, which are replayed step by step.
_EQ, _PEAK, _MAX_DD, _PCT_DD, _PCT_PEAK, _RUN, _LONGEST = range(7)  # offsets in a copy
_A, _B = 0, 7
_FLOOR, _TARGET, _TRAIL, _DAY_START, _X, _X2, _HIT = range(14, 21)
_ROWS = 21


@njit(inline="always")
def _crossed(e, p, floor, trail, target):
    """Did a lane cross a threshold (a breach floor, or the target)?"""
    return (e <= max(floor, p - trail)) | (e >= target)


@njit(inline="always")
def _load(s, c, lane):
    return (s[c + _EQ, lane], s[c + _PEAK, lane], s[c + _MAX_DD, lane], s[c + _PCT_DD, lane],
            s[c + _PCT_PEAK, lane], s[c + _RUN, lane], s[c + _LONGEST, lane])


@njit(inline="always")
def _store(s, c, lane, e, p, max_dd, pct_dd, pct_peak, r, longest):
    s[c + _EQ, lane] = e
    s[c + _PEAK, lane] = p
    s[c + _MAX_DD, lane] = max_dd
    s[c + _PCT_DD, lane] = pct_dd
    s[c + _PCT_PEAK, lane] = pct_peak
    s[c + _RUN, lane] = r
    s[c + _LONGEST, lane] = longest


@njit(inline="always", error_model="numpy")
def _book_lanes(s, c, compound):
    """One step of every lane on copy ``c``: the SIMD loop (``_apply_trade`` lane by
    lane). Returns how many lanes crossed a threshold."""
    hits = 0
    for lane in range(LANES):
        e, p, mdd, pdd, ppk, r, lg = _load(s, c, lane)
        e, p, mdd, pdd, ppk, r, lg = _apply_trade(s[_X, lane], compound, e, p, mdd, pdd, ppk, r, lg)
        _store(s, c, lane, e, p, mdd, pdd, ppk, r, lg)
        hits += np.int64(_crossed(e, p, s[_FLOOR, lane], s[_TRAIL, lane], s[_TARGET, lane]))
    return hits


@njit(inline="always", error_model="numpy")
def _book_pair(s, src, dst, compound):
    """Two steps of every lane (trades ``_X`` then ``_X2``), from copy ``src`` into copy
    ``dst``. Marks in ``_HIT`` the lanes that crossed a threshold at either step and
    returns how many: those are replayed from ``src`` (``_replay_pair``)."""
    hits = 0
    for lane in range(LANES):
        floor, trail, target = s[_FLOOR, lane], s[_TRAIL, lane], s[_TARGET, lane]
        e, p, mdd, pdd, ppk, r, lg = _load(s, src, lane)
        e, p, mdd, pdd, ppk, r, lg = _apply_trade(s[_X, lane], compound, e, p, mdd, pdd, ppk, r, lg)
        hit = _crossed(e, p, floor, trail, target)
        e, p, mdd, pdd, ppk, r, lg = _apply_trade(s[_X2, lane], compound, e, p, mdd, pdd, ppk, r, lg)
        hit = hit | _crossed(e, p, floor, trail, target)
        _store(s, dst, lane, e, p, mdd, pdd, ppk, r, lg)
        s[_HIT, lane] = hit
        hits += np.int64(hit)
    return hits


@njit(inline="always")
def _park(s, lane):
    """A stopped lane: never crosses again (it trades the appended 0.0 from now on)."""
    s[_FLOOR, lane] = -np.inf
    s[_TARGET, lane] = np.inf
    s[_TRAIL, lane] = np.inf


@njit(cache=True, nogil=True, error_model="numpy")
def _bootstrap_lanes(
    lo, hi, padded_values, n_units, units_per_day, horizon, first_path, seed_key, compound, start_balance,
    target, static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, bands,
):
    """Paths ``lo .. hi`` (at most LANES) of an iid bootstrap over single trades.
    ``padded_values`` is the history with a 0.0 appended (index ``n_units``)."""
    n_lanes = hi - lo
    n32 = np.uint64(n_units) & _LOW32  # < 2**32 (validated): lets the multiplies stay 32-bit
    parked = n32  # the index a stopped lane draws: the appended 0.0
    s = np.zeros((_ROWS, LANES))
    state = np.empty(LANES, dtype=np.uint64)
    spare = np.zeros(LANES, dtype=np.uint32)
    index = np.empty(LANES, dtype=np.uint64)  # unsigned: no negative-index wraparound code
    index2 = np.empty(LANES, dtype=np.uint64)
    active = np.zeros(LANES, dtype=np.bool_)
    lane_outcome = np.zeros(LANES, dtype=np.int64)
    lane_decided_at = np.full(LANES, -1, dtype=np.int64)
    lane_ruined = np.zeros(LANES, dtype=np.bool_)
    band_rows = 0
    for lane in range(LANES):
        for c in (_A, _B):
            s[c + _EQ, lane] = start_balance
            s[c + _PEAK, lane] = start_balance
            s[c + _PCT_PEAK, lane] = 1.0
        s[_DAY_START, lane] = start_balance
        if lane < n_lanes:
            state[lane] = path_state(seed_key, first_path + lo + lane)
            active[lane] = True
            s[_FLOOR, lane] = max(static_floor, max(ruin_level, start_balance - daily_limit))
            s[_TARGET, lane] = target
            s[_TRAIL, lane] = trail
            if first_path + lo + lane < bands.shape[1]:
                band_rows += 1
        else:  # an unused lane: never trades, never hits
            state[lane] = np.uint64(0)
            _park(s, lane)
    n_active = n_lanes
    n_cp = checkpoints.shape[0]
    next_cp = 0
    cp_step = checkpoints[0] if n_cp > 0 and band_rows > 0 else -1
    next_day = units_per_day if units_per_day > 0 else horizon + 1
    cur = _A  # the copy that holds the lanes' state

    step = 0
    while step < horizon and n_active > 0:
        seg_end = min(horizon, next_day)
        if 0 < cp_step < seg_end:
            seg_end = cp_step
        while step < seg_end and n_active > 0:
            if step & 1 == 0 and step + 1 < seg_end:
                # Two steps from one 64-bit draw: the high half now, the low half next, as in _path_loop.
                for lane in range(LANES):
                    st = state[lane] + _GOLDEN
                    state[lane] = st
                    z = mix64(st)
                    u = ((z >> _S32) * n32) >> _S32
                    u2 = ((z & _LOW32) * n32) >> _S32
                    index[lane] = u if active[lane] else parked
                    index2[lane] = u2 if active[lane] else parked
                for lane in range(LANES):
                    s[_X, lane] = padded_values[index[lane]]
                    s[_X2, lane] = padded_values[index2[lane]]
                src = cur
                if compound:
                    hits = _book_pair(s, _A, _B, True) if cur == _A else _book_pair(s, _B, _A, True)
                else:
                    hits = _book_pair(s, _A, _B, False) if cur == _A else _book_pair(s, _B, _A, False)
                cur = _B if cur == _A else _A
                if hits > 0:  # rare: replay the lanes that crossed, one step at a time
                    for lane in range(LANES):
                        if s[_HIT, lane] != 0.0 and active[lane]:
                            n_active -= _replay_pair(
                                s, src, cur, lane, compound, step, static_floor, trail, daily_limit, ruin_level,
                                target, stop_at_decision, active, lane_ruined, lane_outcome, lane_decided_at,
                            )
                step += 2
                continue
            if step & 1 == 0:  # a lone even step (a segment ends after it): draw, keep the low half
                for lane in range(LANES):
                    st = state[lane] + _GOLDEN
                    state[lane] = st
                    z = mix64(st)
                    spare[lane] = np.uint32(z & _LOW32)
                    u = ((z >> _S32) * n32) >> _S32
                    index[lane] = u if active[lane] else parked
            else:
                for lane in range(LANES):
                    u = (np.uint64(spare[lane]) * n32) >> _S32
                    index[lane] = u if active[lane] else parked
            for lane in range(LANES):
                s[_X, lane] = padded_values[index[lane]]
            if compound:
                hits = _book_lanes(s, _A, True) if cur == _A else _book_lanes(s, _B, True)
            else:
                hits = _book_lanes(s, _A, False) if cur == _A else _book_lanes(s, _B, False)
            if hits > 0:  # rare: which rule, for the lanes that crossed a threshold
                for lane in range(LANES):
                    if active[lane] and _crossed(s[cur + _EQ, lane], s[cur + _PEAK, lane], s[_FLOOR, lane],
                                                 s[_TRAIL, lane], s[_TARGET, lane]):
                        n_active -= _decide_lane(
                            s, cur, lane, step, static_floor, trail, daily_limit, ruin_level, target,
                            stop_at_decision, active, lane_ruined, lane_outcome, lane_decided_at,
                        )
            step += 1
        if step == next_day:
            next_day += units_per_day
            for lane in range(LANES):
                if active[lane]:
                    s[_DAY_START, lane] = s[cur + _EQ, lane]
                    if lane_outcome[lane] == UNDECIDED:
                        s[_FLOOR, lane] = max(static_floor, max(ruin_level, s[cur + _EQ, lane] - daily_limit))
        if step == cp_step:
            for lane in range(n_lanes):
                row = first_path + lo + lane
                if row < bands.shape[1]:
                    bands[next_cp, row] = s[cur + _EQ, lane]
            next_cp += 1
            cp_step = checkpoints[next_cp] if next_cp < n_cp else -1

    for lane in range(n_lanes):
        i = lo + lane
        row = first_path + i
        if row < bands.shape[1]:  # a stopped account keeps its last equity
            for q in range(next_cp, n_cp):
                bands[q, row] = s[cur + _EQ, lane]
        final_equity[i] = s[cur + _EQ, lane]
        max_dd[i] = s[cur + _MAX_DD, lane]
        max_dd_pct[i] = s[cur + _PCT_DD, lane] / s[cur + _PCT_PEAK, lane]
        outcome[i] = lane_outcome[lane]
        decided_at[i] = lane_decided_at[lane]
        longest_streak[i] = np.int64(s[cur + _LONGEST, lane])
        ruined[i] = lane_ruined[lane]


@njit(inline="always")
def _decide_lane(
    s, c, lane, step, static_floor, trail, daily_limit, ruin_level, target, stop_at_decision,
    active, lane_ruined, lane_outcome, lane_decided_at,
):
    """A lane crossed a threshold at ``step`` (its state in copy ``c``): which rule, and
    what it may still cross. Returns 1 if the lane stopped."""
    r_, o_, a_ = _decide(
        s[c + _EQ, lane], s[c + _PEAK, lane], s[_DAY_START, lane], static_floor, trail, daily_limit,
        ruin_level, target, lane_ruined[lane], lane_outcome[lane], lane_decided_at[lane], step,
    )
    lane_ruined[lane], lane_outcome[lane], lane_decided_at[lane] = r_, o_, a_
    if r_ or (o_ != UNDECIDED and stop_at_decision):
        active[lane] = False
        _park(s, lane)
        return 1
    if o_ != UNDECIDED:  # decided, trading on: only ruin is left to see
        s[_FLOOR, lane] = ruin_level
        s[_TARGET, lane] = np.inf
        s[_TRAIL, lane] = np.inf
    return 0


@njit(inline="always")
def _replay_pair(
    s, src, dst, lane, compound, step, static_floor, trail, daily_limit, ruin_level, target,
    stop_at_decision, active, lane_ruined, lane_outcome, lane_decided_at,
):
    """Steps ``step`` and ``step + 1`` of one lane again, from its state before them, with
    the rule check after each, exactly as two single steps would. Returns 1 if it stopped."""
    e, p, mdd, pdd, ppk, r, lg = _load(s, src, lane)
    e, p, mdd, pdd, ppk, r, lg = _apply_trade(s[_X, lane], compound, e, p, mdd, pdd, ppk, r, lg)
    _store(s, dst, lane, e, p, mdd, pdd, ppk, r, lg)
    stopped = 0
    if _crossed(e, p, s[_FLOOR, lane], s[_TRAIL, lane], s[_TARGET, lane]):
        stopped = _decide_lane(s, dst, lane, step, static_floor, trail, daily_limit, ruin_level, target,
                               stop_at_decision, active, lane_ruined, lane_outcome, lane_decided_at)
    x2 = s[_X2, lane] if stopped == 0 else 0.0  # a lane stopped at the first step draws the parked 0.0
    e, p, mdd, pdd, ppk, r, lg = _apply_trade(x2, compound, e, p, mdd, pdd, ppk, r, lg)
    _store(s, dst, lane, e, p, mdd, pdd, ppk, r, lg)
    if stopped == 0 and _crossed(e, p, s[_FLOOR, lane], s[_TRAIL, lane], s[_TARGET, lane]):
        stopped = _decide_lane(s, dst, lane, step + 1, static_floor, trail, daily_limit, ruin_level, target,
                               stop_at_decision, active, lane_ruined, lane_outcome, lane_decided_at)
    return stopped


@njit(cache=True, nogil=True)
def _simulate_range(
    lo, hi, perm, values, unit_start, unit_len, single_trades, units_per_day, method, restart_p,
    horizon, first_path, seed_key, compound, start_balance, target, static_floor, trail,
    daily_limit, ruin_level, stop_at_decision, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, bands,
):
    """Paths ``lo .. hi`` (indices into the outputs) on the calling thread."""
    if method == BOOTSTRAP and single_trades:
        n_units = unit_start.shape[0]
        padded_values = np.zeros(n_units + 1)  # [n_units] = 0.0: what a stopped lane draws
        padded_values[:n_units] = values
        for start in range(lo, hi, LANES):
            _bootstrap_lanes(
                start, min(start + LANES, hi), padded_values, n_units, units_per_day, horizon, first_path, seed_key,
                compound, start_balance, target, static_floor, trail, daily_limit, ruin_level,
                stop_at_decision, checkpoints, final_equity, max_dd, max_dd_pct, outcome, decided_at,
                longest_streak, ruined, bands,
            )
        return
    for i in range(lo, hi):
        eq, dd, ddp, oc, at, ls, ru = _run_path(
            first_path + i, values, unit_start, unit_len, single_trades, units_per_day,
            method, restart_p, horizon, seed_key, compound, start_balance, target,
            static_floor, trail, daily_limit, ruin_level, stop_at_decision, checkpoints,
            bands, perm,
        )
        final_equity[i] = eq
        max_dd[i] = dd
        max_dd_pct[i] = ddp
        outcome[i] = oc
        decided_at[i] = at
        longest_streak[i] = ls
        ruined[i] = ru


@njit(parallel=True, cache=True, nogil=True)
def simulate_paths(
    values, unit_start, unit_len, single_trades, units_per_day, method, restart_p, horizon,
    first_path, seed_key, compound, start_balance, target, static_floor, trail,
    daily_limit, ruin_level, stop_at_decision, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, bands,
):
    """Simulate paths ``first_path .. first_path + len(final_equity)`` into the outputs,
    on numba's thread pool.

    Outputs are indexed from 0 for ``first_path``; ``bands`` has one row per checkpoint
    and one column per global path index below ``bands.shape[1]`` (checkpoint-major, so
    the fan's percentiles sort contiguous rows without a transposed copy).
    """
    n_paths = final_equity.shape[0]
    n_chunks = (n_paths + CHUNK - 1) // CHUNK
    perm_size = unit_start.shape[0] if method == PERMUTATION else 0
    for c in prange(n_chunks):
        perm = np.empty(perm_size, dtype=np.int64)
        _simulate_range(
            c * CHUNK, min(c * CHUNK + CHUNK, n_paths), perm, values, unit_start, unit_len,
            single_trades, units_per_day, method, restart_p, horizon, first_path, seed_key,
            compound, start_balance, target, static_floor, trail, daily_limit, ruin_level,
            stop_at_decision, checkpoints, final_equity, max_dd, max_dd_pct, outcome,
            decided_at, longest_streak, ruined, bands,
        )


@njit(cache=True, nogil=True)
def simulate_paths_serial(
    values, unit_start, unit_len, single_trades, units_per_day, method, restart_p, horizon,
    first_path, seed_key, compound, start_balance, target, static_floor, trail,
    daily_limit, ruin_level, stop_at_decision, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, bands,
):
    """``simulate_paths`` on the calling thread alone, without the GIL: for callers
    that run many simulations on threads of their own (numba's default thread pool
    must not be entered from several threads at once). Same numbers, bit for bit."""
    perm = np.empty(unit_start.shape[0] if method == PERMUTATION else 0, dtype=np.int64)
    _simulate_range(
        0, final_equity.shape[0], perm, values, unit_start, unit_len, single_trades,
        units_per_day, method, restart_p, horizon, first_path, seed_key, compound,
        start_balance, target, static_floor, trail, daily_limit, ruin_level, stop_at_decision,
        checkpoints, final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak,
        ruined, bands,
    )


# The general kernel has entry points of its own, so a run that needs only the fast
# kernels never compiles it (a cold start compiles what its run uses: docs/engine.md).


@njit(cache=True, nogil=True)
def _general_range(
    lo, hi, perm, values, mae, unit_start, unit_len, units_per_day, method, restart_p, horizon, first_path,
    seed_key, compound, stop_at_decision, phase_rules, payout, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, phases_passed,
    paid, payouts, first_payout, bands,
):
    """Paths ``lo .. hi`` of the general kernel on the calling thread."""
    for i in range(lo, hi):
        eq, dd, ddp, oc, at, ls, ru, ph, pd, np_, fp = _rules_path(
            first_path + i, values, mae, unit_start, unit_len, units_per_day, method, restart_p,
            horizon, seed_key, compound, stop_at_decision, phase_rules, payout, checkpoints, bands, perm,
        )
        final_equity[i] = eq
        max_dd[i] = dd
        max_dd_pct[i] = ddp
        outcome[i] = oc
        decided_at[i] = at
        longest_streak[i] = ls
        ruined[i] = ru
        phases_passed[i] = ph
        paid[i] = pd
        payouts[i] = np_
        first_payout[i] = fp


@njit(parallel=True, cache=True, nogil=True)
def simulate_paths_general(
    values, mae, unit_start, unit_len, units_per_day, method, restart_p, horizon, first_path, seed_key,
    compound, stop_at_decision, phase_rules, payout, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, phases_passed,
    paid, payouts, first_payout, bands,
):
    """``simulate_paths`` for the general kernel: every rule in ``phase_rules`` (one row
    per phase), the trades' excursions in ``mae`` (empty: none), the payout policy in
    ``payout`` (empty: none); it also writes the phases passed and the payouts."""
    n_paths = final_equity.shape[0]
    n_chunks = (n_paths + CHUNK - 1) // CHUNK
    perm_size = unit_start.shape[0] if method == PERMUTATION else 0
    for c in prange(n_chunks):
        perm = np.empty(perm_size, dtype=np.int64)
        _general_range(
            c * CHUNK, min(c * CHUNK + CHUNK, n_paths), perm, values, mae, unit_start, unit_len, units_per_day,
            method, restart_p, horizon, first_path, seed_key, compound, stop_at_decision, phase_rules, payout,
            checkpoints, final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, phases_passed,
            paid, payouts, first_payout, bands,
        )


@njit(cache=True, nogil=True)
def simulate_paths_general_serial(
    values, mae, unit_start, unit_len, units_per_day, method, restart_p, horizon, first_path, seed_key,
    compound, stop_at_decision, phase_rules, payout, checkpoints,
    final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, phases_passed,
    paid, payouts, first_payout, bands,
):
    """``simulate_paths_general`` on the calling thread alone. Same numbers, bit for bit."""
    perm = np.empty(unit_start.shape[0] if method == PERMUTATION else 0, dtype=np.int64)
    _general_range(
        0, final_equity.shape[0], perm, values, mae, unit_start, unit_len, units_per_day, method, restart_p,
        horizon, first_path, seed_key, compound, stop_at_decision, phase_rules, payout, checkpoints,
        final_equity, max_dd, max_dd_pct, outcome, decided_at, longest_streak, ruined, phases_passed,
        paid, payouts, first_payout, bands,
    )
