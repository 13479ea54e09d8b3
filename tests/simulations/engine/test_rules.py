"""The rules firms write, against answers computed without the engine: every path of a
tiny history enumerated and replayed by a plain reading of docs/engine.md's rules."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from simulations.engine import EngineValidationError, Rules, SimulationConfig, TradeHistory, simulate

START = 1_000.0
# Three days of (pnl, mae): whole days are resampled, each day keeps its order.
DAYS = [
    [(60.0, 10.0), (30.0, 50.0)],  # +90, dips 50 below its open in its second trade
    [(-40.0, 70.0), (10.0, 0.0)],  # -30, dips 70 in its first
    [(20.0, 0.0), (-70.0, 90.0)],  # -50
]
PATHS = 200_000


def replay(days, **rules):
    """One path, rule by rule as docs/engine.md states them; stops at the decision."""
    return replay_account(days, **rules)[0]


def replay_phases(days, phases):
    """Phase after phase: each phase's account opens with the day after the last one passed."""
    for number, rules in enumerate(phases):
        outcome, used = replay_account(days, **rules)
        if outcome != "pass":
            return outcome, number
        days = days[used:]
    return "pass", len(phases)


def replay_account(days, *, start=START, target=None, max_dd=None, trailing=False, end_of_day=False, lock=None,
                   daily=None, ruin=0.0, min_days=None, max_days=None, time_fails=True, consistency=None,
                   target_inclusive=True, floors_inclusive=True):  # fmt: skip
    """One account: its outcome, and the days it took."""

    def crossed(x, floor):
        return x <= floor if floors_inclusive else x < floor

    def drawdown_floor(mark):
        if max_dd is None:
            return -math.inf
        if not trailing:
            return start - max_dd
        return mark - max_dd if lock is None else min(mark - max_dd, start + lock)

    equity = mark = start
    closed_days = []
    for number, day in enumerate(days, start=1):
        opened = equity
        for pnl, mae in day:
            floor_during = drawdown_floor(mark)  # the excursion comes before the close
            worst = equity - mae
            equity += pnl
            if not end_of_day:
                mark = max(mark, equity)
            lowest = min(worst, equity)
            if crossed(lowest, ruin):
                return "ruin", number
            if crossed(equity, drawdown_floor(mark)) or crossed(worst, floor_during):
                return "max_drawdown", number
            if daily is not None and crossed(lowest, opened - daily):
                return "daily_loss_limit", number
            if target is not None:
                reached = equity >= start + target if target_inclusive else equity > start + target
                best = max([*closed_days, equity - opened])
                consistent = consistency is None or best <= consistency * (equity - start)
                if reached and number >= (min_days or 0) and consistent:
                    return "pass", number
        closed_days.append(equity - opened)
        if end_of_day:
            mark = max(mark, equity)
        if max_days is not None and number >= max_days:
            return ("time_limit" if time_fails else "undecided"), number
    return "undecided", len(days)


def exact(horizon, days=DAYS, **rules):
    """Every sequence of days, equally likely under the bootstrap: outcome probabilities."""
    n = len(days)
    counts = Counter(replay([days[i] for i in seq], **rules) for seq in itertools.product(range(n), repeat=horizon))
    return {name: k / n**horizon for name, k in counts.items()}


def engine(horizon, days=DAYS, **rules):
    trades = [t for day in days for t in day]
    history = TradeHistory(
        np.array([p for p, _ in trades]),
        np.repeat(np.arange(len(days)), [len(d) for d in days]),
        np.array([m for _, m in trades]),
    )
    config = SimulationConfig(paths=PATHS, horizon=horizon, seed=4, starting_balance=START, rules=Rules(**rules))
    result = simulate(history, config)
    got = {name: n / PATHS for name, n in result.failure_causes.items()}
    got.update(pass_=result.probabilities["pass"].estimate, undecided=result.probabilities["undecided"].estimate)
    got["pass"] = got.pop("pass_")
    fail = result.probabilities["fail"].estimate
    assert fail == pytest.approx(sum(result.failure_causes.values()) / PATHS)
    return got


CASES = {
    "end-of-day trailing": dict(target=150.0, max_drawdown=60.0, drawdown_type="trailing", trailing_basis="end_of_day"),
    "intraday trailing": dict(target=150.0, max_drawdown=60.0, drawdown_type="trailing"),
    "trailing lock at the start": dict(
        target=200.0, max_drawdown=40.0, drawdown_type="trailing", trailing_basis="end_of_day", trailing_lock=0.0
    ),
    "min trading days": dict(target=80.0, max_drawdown=100.0, min_trading_days=3),
    "time limit fails": dict(target=150.0, max_drawdown=100.0, max_trading_days=3),
    "time limit undecided": dict(target=150.0, max_drawdown=100.0, max_trading_days=3, time_limit_fails=False),
    "consistency": dict(target=100.0, max_drawdown=150.0, consistency=0.6),
    "daily limit and ruin": dict(target=150.0, daily_loss_limit=60.0, ruin_level=920.0),
    "strict target": dict(profit_target=60.0, max_drawdown=40.0, target_inclusive=False),
    "strict floors": dict(profit_target=60.0, max_drawdown=40.0, floors_inclusive=False),
    "every rule at once": dict(
        target=150.0,
        max_drawdown=70.0,
        drawdown_type="trailing",
        trailing_basis="end_of_day",
        trailing_lock=30.0,
        daily_loss_limit=80.0,
        min_trading_days=2,
        max_trading_days=5,
        consistency=0.7,
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", CASES)
def test_outcomes_match_every_path_enumerated(name):
    rules = {("profit_target" if k == "target" else k): v for k, v in CASES[name].items()}
    replay_rules = {
        {"profit_target": "target", "max_drawdown": "max_dd", "daily_loss_limit": "daily", "ruin_level": "ruin",
         "min_trading_days": "min_days", "max_trading_days": "max_days", "trailing_lock": "lock",
         "trailing_basis": "end_of_day", "drawdown_type": "trailing", "time_limit_fails": "time_fails"}.get(k, k): v
        for k, v in rules.items()
    }  # fmt: skip
    if "end_of_day" in replay_rules:
        replay_rules["end_of_day"] = replay_rules["end_of_day"] == "end_of_day"
    if "trailing" in replay_rules:
        replay_rules["trailing"] = replay_rules["trailing"] == "trailing"
    horizon = 5
    want = exact(horizon, **replay_rules)
    assert len(want) >= 2, want  # the case decides paths differently
    got = engine(horizon, **rules)
    for outcome in {*want, *got}:
        p = want.get(outcome, 0.0)
        tolerance = 4 * math.sqrt(p * (1 - p) / PATHS) + 1e-12  # a false alarm about once in 16,000
        assert abs(got.get(outcome, 0.0) - p) <= tolerance, (outcome, got, want)


def test_strict_thresholds_decide_the_paths_that_land_exactly_on_them():
    """A day that lands exactly on the target of 60 and one exactly on the floor of 960:
    inclusive rules decide them there, strict ones leave them undecided."""
    days = [[(60.0, 0.0), (0.0, 0.0)], [(-40.0, 0.0), (10.0, 0.0)], [(20.0, 0.0), (-70.0, 0.0)]]
    inclusive = {"pass": 1 / 3, "max_drawdown": 2 / 3}
    strict = {"undecided": 2 / 3, "max_drawdown": 1 / 3}
    assert exact(1, days, target=60.0, max_dd=40.0) == pytest.approx(inclusive)
    assert exact(1, days, target=60.0, max_dd=40.0, target_inclusive=False, floors_inclusive=False) == pytest.approx(
        strict
    )
    got = engine(1, days, profit_target=60.0, max_drawdown=40.0)
    assert {k: v for k, v in got.items() if v} == pytest.approx(inclusive, abs=0.01)
    got = engine(1, days, profit_target=60.0, max_drawdown=40.0, target_inclusive=False, floors_inclusive=False)
    assert {k: v for k, v in got.items() if v} == pytest.approx(strict, abs=0.01)


def test_an_excursion_fails_a_path_whose_trades_close_above_every_floor():
    config = SimulationConfig(
        paths=1, method="permutation", seed=1, starting_balance=START, rules=Rules(max_drawdown=50.0)
    )
    closes_only = simulate(TradeHistory(np.array([10.0, 10.0])), config)
    with_mae = simulate(TradeHistory(np.array([10.0, 10.0]), mae=np.array([0.0, 80.0])), config)
    assert closes_only.probabilities["fail"].estimate == 0.0
    assert with_mae.failure_causes["max_drawdown"] == 1  # 1,010 - 80 = 930, below the floor of 950


@pytest.mark.parametrize(
    "rules,field",
    [
        ({"trailing_lock": 0.0, "max_drawdown": 50.0}, "rules.trailing_lock"),  # static
        ({"trailing_basis": "end_of_day"}, "rules.trailing_basis"),
        ({"trailing_basis": "weekly", "max_drawdown": 5.0, "drawdown_type": "trailing"}, "rules.trailing_basis"),
        ({"trailing_lock": -1.0, "max_drawdown": 5.0, "drawdown_type": "trailing"}, "rules.trailing_lock"),
        ({"min_trading_days": 3}, "rules.min_trading_days"),  # without a target
        ({"profit_target": 5.0, "min_trading_days": 0}, "rules.min_trading_days"),
        ({"profit_target": 5.0, "min_trading_days": 4, "max_trading_days": 3}, "rules.min_trading_days"),
        ({"max_trading_days": 1.5}, "rules.max_trading_days"),
        ({"profit_target": 5.0, "consistency": 0.0}, "rules.consistency"),
        ({"profit_target": 5.0, "consistency": 1.5}, "rules.consistency"),
        ({"consistency": 0.5}, "rules.consistency"),
        ({"target_inclusive": "yes"}, "rules.target_inclusive"),
        ({"time_limit_fails": None}, "rules.time_limit_fails"),
    ],
)
def test_each_new_rule_is_validated_with_its_reason(rules, field):
    with pytest.raises(EngineValidationError) as caught:
        SimulationConfig.from_dict({"rules": rules})
    assert field in caught.value.errors, caught.value.errors


@pytest.mark.parametrize("name", ["min_trading_days", "max_trading_days", "consistency", "trailing_basis"])
def test_the_rules_that_count_days_need_days(name):
    values = {"min_trading_days": 2, "max_trading_days": 2, "consistency": 0.5, "trailing_basis": "end_of_day"}
    rules = {"profit_target": 5.0, "max_drawdown": 5.0, "drawdown_type": "trailing", name: values[name]}
    with pytest.raises(EngineValidationError) as caught:
        simulate([1.0, -1.0], SimulationConfig.from_dict({"paths": 10, "rules": rules}))
    assert caught.value.errors == {f"rules.{name}": ["counts days: needs trades with dates, or trades_per_day"]}
    simulate([1.0, -1.0], SimulationConfig.from_dict({"paths": 10, "trades_per_day": 2, "rules": rules}))


def test_trade_records_and_csv_carry_the_excursion(tmp_path):
    history = TradeHistory.from_records([{"pnl": 5, "mae": 7}, {"pnl": -3}, 4.0])
    assert history.mae.tolist() == [7.0, 0.0, 0.0]  # a trade without one went no lower than its close
    assert TradeHistory.from_records([1.0, 2.0]).mae is None
    for bad in ({"pnl": 1, "mae": -2}, {"pnl": 1, "mae": "x"}, {"pnl": 1, "mae": True}, {"pnl": 1, "mae": "nan"}):
        with pytest.raises(EngineValidationError) as caught:
            TradeHistory.from_records([bad])
        assert list(caught.value.errors) == ["trades[0].mae"]
    with pytest.raises(EngineValidationError) as caught:  # returns mode: a fraction of the equity
        simulate(TradeHistory(np.array([0.01]), mae=np.array([1.0])), SimulationConfig(paths=2, mode="returns"))
    assert list(caught.value.errors) == ["trades[0].mae"]
    path = tmp_path / "t.csv"
    path.write_text("pnl,worst\n5,7\n-3,3\n")
    assert TradeHistory.from_csv(str(path), mae_column="worst").mae.tolist() == [7.0, 3.0]
    with pytest.raises(EngineValidationError):
        TradeHistory.from_csv(str(path), mae_column="absent")


def test_settings_that_do_nothing_are_reported_not_echoed_as_applied():
    dated = [{"pnl": 5.0, "date": "2026-06-01"}, {"pnl": -3.0, "date": "2026-06-02"}]
    result = simulate(
        TradeHistory.from_records(dated),
        SimulationConfig.from_dict(
            {
                "paths": 20,
                "horizon": 4,
                "trades_per_day": 3,
                "block_size": 9,
                "auto_tolerance": 0.05,
                "rules": {
                    "drawdown_type": "trailing",
                    "time_limit_fails": False,
                    "profit_target": 9.0,
                    "max_trading_days": 10,
                },
            }  # fmt: skip
        ),
    )
    assert set(result.ignored_settings) == {
        "trades_per_day",
        "block_size",
        "auto_tolerance",
        "rules.drawdown_type",
        "rules.max_trading_days",
    }
    assert "dates" in result.ignored_settings["trades_per_day"]
    assert "after 4 days" in result.ignored_settings["rules.max_trading_days"]
    plain = simulate([5.0, -3.0], SimulationConfig(paths=20, method="block", block_size=9))
    assert plain.ignored_settings == {}


def test_failure_causes_add_up_to_the_failed_paths():
    history = np.random.default_rng(3).normal(0, 50, 200)
    result = simulate(
        history,
        SimulationConfig(
            paths=5_000, seed=2, trades_per_day=5, starting_balance=1_000.0,
            rules=Rules(profit_target=200.0, max_drawdown=150.0, daily_loss_limit=60.0, ruin_level=800.0),
        ),
    )  # fmt: skip
    causes = result.failure_causes
    assert set(causes) == {"ruin", "max_drawdown", "daily_loss_limit", "time_limit"}
    assert causes["max_drawdown"] > 0 and causes["daily_loss_limit"] > 0 and causes["time_limit"] == 0
    assert sum(causes.values()) == result.probabilities["fail"].count


def test_phases_match_every_path_enumerated():
    """Two phases: a new account for the second, opening the day after the first passed;
    P(pass) is passing both, and each phase's own pass probability is reported."""
    phases = [
        {"profit_target": 60.0, "max_drawdown": 80.0},
        {"profit_target": 40.0, "max_drawdown": 45.0, "drawdown_type": "trailing", "daily_loss_limit": 60.0},
    ]
    replay_rules = [
        {"target": 60.0, "max_dd": 80.0},
        {"start": 500.0, "target": 40.0, "max_dd": 45.0, "trailing": True, "daily": 60.0},
    ]
    horizon = 6
    outcomes = Counter(
        replay_phases([DAYS[i] for i in seq], replay_rules) for seq in itertools.product(range(3), repeat=horizon)
    )
    total = 3**horizon
    want_first = sum(n for (_, passed), n in outcomes.items() if passed >= 1) / total
    want_pass = sum(n for (outcome, _), n in outcomes.items() if outcome == "pass") / total
    assert 0.05 < want_pass < want_first < 0.95  # both phases decide paths
    trades = [t for day in DAYS for t in day]
    history = TradeHistory(
        np.array([p for p, _ in trades]),
        np.repeat(np.arange(3), [len(d) for d in DAYS]),
        np.array([m for _, m in trades]),
    )
    config = SimulationConfig.from_dict(
        {
            "paths": PATHS, "horizon": horizon, "seed": 9, "starting_balance": START,
            "phases": [{"rules": phases[0]}, {"rules": phases[1], "starting_balance": 500.0}],
        }
    )  # fmt: skip
    result = simulate(history, config)
    got_first, got_second = result.phase_pass
    for got, p in ((got_first.estimate, want_first), (result.probabilities["pass"].estimate, want_pass)):
        assert abs(got - p) <= 4 * math.sqrt(p * (1 - p) / PATHS), (got, p)
    assert got_second.estimate == result.probabilities["pass"].estimate
    assert result.steps_to_pass.min >= 2  # two phases take two days at least


@pytest.mark.parametrize(
    "config,field",
    [
        ({"phases": [{"rules": {"max_drawdown": 5.0}}]}, "phases[0].rules.profit_target"),
        ({"phases": [{"rules": {"profit_target": -5.0}}]}, "phases[0].rules.profit_target"),
        ({"phases": [{"rules": {"profit_target": 5.0}, "starting_balance": 0}]}, "phases[0].starting_balance"),
        ({"phases": [{"rules": {"profit_target": 5.0}, "size": 3}]}, "phases[0].size"),
        ({"phases": [{"rules": {"profit_target": 5.0, "bogus": 1}}]}, "phases[0].rules.bogus"),
        ({"phases": [5]}, "phases[0]"),
        ({"phases": {"rules": {}}}, "phases"),
        ({"phases": [{"rules": {"profit_target": 5.0}}], "rules": {"profit_target": 5.0}}, "rules"),
        ({"phases": [{"rules": {"profit_target": 5.0}}] * 11}, "phases"),
    ],
)
def test_phases_are_validated_with_their_positions(config, field):
    with pytest.raises(EngineValidationError) as caught:
        SimulationConfig.from_dict(config)
    assert field in caught.value.errors, caught.value.errors


def test_a_phase_rule_that_counts_days_needs_days():
    config = SimulationConfig.from_dict(
        {"phases": [{"rules": {"profit_target": 5.0}}, {"rules": {"profit_target": 5.0, "min_trading_days": 2}}]}
    )
    with pytest.raises(EngineValidationError) as caught:
        simulate([1.0, -1.0], config)
    assert list(caught.value.errors) == ["phases[1].rules.min_trading_days"]


def replay_funded(days, *, split, trail=None, after="shift", cadence=None, buffer=0.0, min_payout=0.0,
                  max_payout=math.inf, win_days=0, win_profit=0.0):  # fmt: skip
    """A funded account under a trailing drawdown, paid as docs/engine.md's payout policy
    says: (paid to the trader, payouts, day of the first or None, breached)."""
    equity = mark = START
    lock = math.inf
    paid, count, first, wins = 0.0, 0, None, 0
    for number, day in enumerate(days, start=1):
        opened = equity
        for pnl, mae in day:
            floor_during = -math.inf if trail is None else min(mark - trail, lock)
            worst = equity - mae
            equity += pnl
            mark = max(mark, equity)
            floor = -math.inf if trail is None else min(mark - trail, lock)
            if min(worst, equity) <= 0.0 or equity <= floor or worst <= floor_during:
                return paid, count, first, True
        profit = equity - opened
        if profit > 0 and profit >= win_profit:
            wins += 1
        due = cadence is None or number % cadence == 0
        amount = min(equity - START - buffer, max_payout)
        if due and wins >= win_days and amount > 0 and amount >= min_payout:
            equity -= amount
            if after == "shift":
                mark -= amount
            elif after == "lock_at_start":
                lock = START
            paid += split * amount
            count += 1
            first = first or number
            wins = 0
    return paid, count, first, False


FUNDED = {
    "on request, everything": (dict(split=0.8), dict(split=0.8)),
    "cadence, buffer, trailing shift": (
        dict(split=0.9, cadence_days=2, buffer=20.0, min_payout=15.0),
        dict(split=0.9, cadence=2, buffer=20.0, min_payout=15.0, trail=70.0),
    ),
    "winning days, cap, lock at start": (
        dict(split=0.75, min_winning_days=2, winning_day_profit=50.0, max_payout=40.0, after_payout="lock_at_start"),
        dict(split=0.75, win_days=2, win_profit=50.0, max_payout=40.0, after="lock_at_start", trail=60.0),
    ),
    "keep the floor": (dict(split=1.0, after_payout="keep"), dict(split=1.0, after="keep", trail=100.0)),
}


@pytest.mark.parametrize("name", FUNDED)
def test_payouts_match_every_path_enumerated(name):
    policy, replay_args = FUNDED[name]
    horizon = 6
    sequences = list(itertools.product(range(3), repeat=horizon))
    replays = [replay_funded([DAYS[i] for i in seq], **replay_args) for seq in sequences]
    paid = np.array([r[0] for r in replays])
    any_paid = np.array([r[1] > 0 for r in replays])
    breached = np.array([r[3] for r in replays])
    firsts = Counter(r[2] for r in replays if r[2] is not None)
    assert 0 < any_paid.mean() < 1 and paid.std() > 0  # the policy pays some paths, not all
    trades = [t for day in DAYS for t in day]
    history = TradeHistory(
        np.array([p for p, _ in trades]),
        np.repeat(np.arange(3), [len(d) for d in DAYS]),
        np.array([m for _, m in trades]),
    )
    trail = replay_args.get("trail")
    rules = {} if trail is None else {"max_drawdown": trail, "drawdown_type": "trailing"}
    config = SimulationConfig.from_dict(
        {"paths": PATHS, "horizon": horizon, "seed": 12, "starting_balance": START, "rules": rules,
         "payout": {**policy, "fees": 100.0}}
    )  # fmt: skip
    result = simulate(history, config).payouts
    assert abs(result.paid.mean - paid.mean()) <= 4 * paid.std() / math.sqrt(PATHS)
    assert abs(result.firm_net.mean - (100.0 - paid.mean())) <= 4 * paid.std() / math.sqrt(PATHS)
    for got, p in ((result.any_payout.estimate, any_paid.mean()), (result.breach.estimate, breached.mean())):
        assert abs(got - p) <= 4 * math.sqrt(p * (1 - p) / PATHS) + 1e-12, (got, p)
    first_days = np.array(list(firsts.elements()), dtype=float)
    got_first = result.days_to_first_payout
    assert (got_first.min, got_first.max) == (first_days.min(), first_days.max())
    assert abs(got_first.mean - first_days.mean()) <= 4 * first_days.std() / math.sqrt(got_first.count) + 1e-12


@pytest.mark.parametrize(
    "config,field",
    [
        ({"payout": {"split": 0}}, "payout.split"),
        ({"payout": {"split": 1.5}}, "payout.split"),
        ({"payout": {"cadence_days": 0}}, "payout.cadence_days"),
        ({"payout": {"min_payout": -1}}, "payout.min_payout"),
        ({"payout": {"max_payout": 0}}, "payout.max_payout"),
        ({"payout": {"min_payout": 100, "max_payout": 50}}, "payout.max_payout"),
        ({"payout": {"after_payout": "reset"}}, "payout.after_payout"),
        ({"payout": {"fees": -5}}, "payout.fees"),
        ({"payout": {"min_winning_days": 1.5}}, "payout.min_winning_days"),
        ({"payout": {"bogus": 1}}, "payout.bogus"),
        ({"payout": 5}, "payout"),
        ({"payout": {}, "rules": {"profit_target": 5.0}}, "rules.profit_target"),
        ({"payout": {}, "phases": [{"rules": {"profit_target": 5.0}}]}, "payout"),
    ],
)
def test_payout_policies_are_validated_with_their_reasons(config, field):
    with pytest.raises(EngineValidationError) as caught:
        SimulationConfig.from_dict(config)
    assert field in caught.value.errors, caught.value.errors


def test_payouts_need_days():
    config = SimulationConfig.from_dict({"paths": 10, "payout": {}})
    with pytest.raises(EngineValidationError) as caught:
        simulate([1.0, -1.0], config)
    assert list(caught.value.errors) == ["payout"]
    result = simulate([5.0, -1.0], SimulationConfig.from_dict({"paths": 10, "trades_per_day": 1, "payout": {}}))
    assert result.payouts.any_payout.estimate > 0
