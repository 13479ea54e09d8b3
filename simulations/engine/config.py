"""Typed, validated simulation settings.

``SimulationConfig.from_dict`` takes snake_case keys (the service converts the API's
camelCase before it calls the engine) and reports every problem at once through
:class:`EngineValidationError`, naming each field by its path (``rules.max_drawdown``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .errors import EngineValidationError

Method = Literal["bootstrap", "permutation", "block"]
Mode = Literal["pnl", "returns"]
DrawdownType = Literal["static", "trailing"]
TrailingBasis = Literal["intraday", "end_of_day"]
AfterPayout = Literal["shift", "keep", "lock_at_start"]
Unit = Literal["auto", "trade", "day"]

METHODS: tuple[str, ...] = ("bootstrap", "permutation", "block")
MODES: tuple[str, ...] = ("pnl", "returns")
DRAWDOWN_TYPES: tuple[str, ...] = ("static", "trailing")
TRAILING_BASES: tuple[str, ...] = ("intraday", "end_of_day")
AFTER_PAYOUT: tuple[str, ...] = ("shift", "keep", "lock_at_start")
MAX_TRADING_DAYS = 100_000  # the horizon's own bound
UNITS: tuple[str, ...] = ("auto", "trade", "day")

MAX_AMOUNT = 1e15  # amounts (balance, target, limits) are positive and below this
MIN_BALANCE = 0.01  # a cent: returns are P&L over the balance, which must not vanish
# The integer and the other numeric settings that ``setting_bounds`` bounds.
INTEGER_SETTINGS = (
    "paths",
    "horizon",
    "seed",
    "trades_per_day",
    "auto_max_paths",
    "band_paths",
    "fan_points",
    "histogram_bins",
)
NUMBER_SETTINGS = ("block_size", "auto_tolerance")


@dataclass(frozen=True)
class EngineLimits:
    """Upper bounds that protect a worker from absurd requests (settings may raise them)."""

    max_paths: int = 5_000_000
    max_horizon: int = 100_000
    max_samples: int = 20_000_000_000  # paths x horizon x mean unit length
    max_history: int = 1_000_000


def setting_bounds(limits: EngineLimits = EngineLimits()) -> dict[str, tuple[Any, Any]]:
    """Inclusive bounds of each numeric setting, by field name: what ``validate`` checks,
    and what the API's schema states (a test compares the two)."""
    return {
        "paths": (1, limits.max_paths),
        "horizon": (1, limits.max_horizon),
        "seed": (0, 2**63 - 1),
        "trades_per_day": (1, 100_000),
        "auto_max_paths": (1_000, limits.max_paths),
        "band_paths": (1, 100_000),
        "fan_points": (2, 200),
        "histogram_bins": (1, 1_000),
        "block_size": (1.0, 10_000.0),
        "auto_tolerance": (1e-4, 0.5),
    }


@dataclass(frozen=True)
class Rules:
    """The firm's rules, replayed on every path. ``None`` switches a rule off.

    Amounts are in account currency. ``profit_target`` is profit over the starting
    balance; ``max_drawdown`` is measured from the starting balance (``static``) or
    from the path's high-water mark (``trailing``: after every trade, ``intraday``, or
    at each day's close, ``end_of_day``; ``trailing_lock`` stops the floor rising at
    the starting balance plus that amount); ``daily_loss_limit`` from the equity at the
    start of each simulated day; ``ruin_level`` is an account balance (default 0):
    reaching it ends the path. A pass needs ``min_trading_days`` and, with
    ``consistency``, the best day's profit at most that share of the total profit;
    ``max_trading_days`` ends an evaluation (failed if ``time_limit_fails``). A
    threshold is met on reaching it (``*_inclusive``), or only beyond it. The exact
    semantics, rule by rule: ``docs/engine.md``.
    """

    profit_target: float | None = None
    max_drawdown: float | None = None
    drawdown_type: DrawdownType = "static"
    trailing_basis: TrailingBasis = "intraday"
    trailing_lock: float | None = None
    daily_loss_limit: float | None = None
    ruin_level: float | None = None
    min_trading_days: int | None = None
    max_trading_days: int | None = None
    time_limit_fails: bool = True
    consistency: float | None = None
    target_inclusive: bool = True
    floors_inclusive: bool = True

    def general(self) -> bool:
        """Is a rule on that only the general kernel replays?"""
        return (
            self.trailing_basis != "intraday"
            or self.trailing_lock is not None
            or self.min_trading_days is not None
            or self.max_trading_days is not None
            or self.consistency is not None
            or not self.target_inclusive
            or not self.floors_inclusive
        )

    def needs_days(self) -> list[str]:
        """The rules on that count days, by field name."""
        named = {
            "daily_loss_limit": self.daily_loss_limit is not None,
            "min_trading_days": self.min_trading_days is not None,
            "max_trading_days": self.max_trading_days is not None,
            "consistency": self.consistency is not None,
            "trailing_basis": self.trailing_basis == "end_of_day" and self.max_drawdown is not None,
        }
        return [name for name, on in named.items() if on]


MAX_PHASES = 10


@dataclass(frozen=True)
class PayoutPolicy:
    """How a funded account pays its trader, checked at each trading day's close.

    A payout is due every ``cadence_days`` trading days (days N, 2N, ...), or at any
    close (``None``: on request, as soon as it is eligible). It is taken when at least
    ``min_winning_days`` days closed with a profit of at least ``winning_day_profit``
    (above 0 when that is 0) since the last payout, and the amount withdrawn, the
    balance above the starting balance plus ``buffer`` (at most ``max_payout``), is at
    least ``min_payout`` and above 0. The withdrawal leaves the balance; the trader gets
    ``split`` of it. The trailing floor then moves down with the balance (``shift``),
    stays where it was (``keep``), or stops at the starting balance (``lock_at_start``).
    ``fees`` (what the trader paid the firm) give the firm's net: fees less payouts.
    Exact semantics: ``docs/engine.md``."""

    split: float = 0.8
    cadence_days: int | None = None
    min_payout: float = 0.0
    max_payout: float | None = None
    buffer: float = 0.0
    min_winning_days: int = 0
    winning_day_profit: float = 0.0
    after_payout: AfterPayout = "shift"
    fees: float | None = None


@dataclass(frozen=True)
class Phase:
    """One evaluation phase: its own rules and account. A path that passes it starts the
    next one fresh; passing the last one is passing (funded)."""

    rules: Rules = field(default_factory=Rules)
    starting_balance: float | None = None  # default: the config's


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``paths="auto"`` adds paths until the estimate is tight enough."""

    paths: int | Literal["auto"] = 10_000
    horizon: int | None = None  # in units; default: the history's length in units
    method: Method = "bootstrap"
    block_size: float = 5.0  # mean block length of the stationary bootstrap
    seed: int | None = None  # None: drawn at random and echoed in the result
    mode: Mode = "pnl"
    starting_balance: float = 100_000.0
    unit: Unit = "auto"  # resample trades, or whole days (auto: days when trades carry dates)
    trades_per_day: int | None = None  # forms days when resampling trades
    stop_at_decision: bool = True  # a passed or failed account stops trading
    rules: Rules = field(default_factory=Rules)
    phases: tuple[Phase, ...] = ()  # evaluation phases in order, each with its rules (then no rules here)
    payout: PayoutPolicy | None = None  # a funded account's payouts (no target, no phases)
    auto_tolerance: float = 0.01  # paths="auto": target width of the 95% interval
    auto_max_paths: int = 1_000_000
    band_paths: int = 2_000  # equity fan drawn from the first this-many paths (see README)
    fan_points: int = 200
    histogram_bins: int = 50

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, limits: EngineLimits = EngineLimits()) -> SimulationConfig:
        """Build and validate a config from a mapping of snake_case settings."""
        data = dict(data or {})
        errors: dict[str, list[str]] = {}
        rules = _rules_from(data.pop("rules", None), "rules", errors)
        payout = _payout_from(data.pop("payout", None), errors)
        phases_data = data.pop("phases", None) or []
        phases: list[Phase] = []
        if not isinstance(phases_data, list):
            errors.setdefault("phases", []).append("must be a list of phases")
            phases_data = []
        for i, phase in enumerate(phases_data):
            where = f"phases[{i}]"
            if not isinstance(phase, Mapping):
                errors.setdefault(where, []).append('must be an object: {"rules": ..., "starting_balance": ...}')
                continue
            for key in phase:
                if key not in ("rules", "starting_balance"):
                    errors.setdefault(f"{where}.{key}", []).append("unknown setting of a phase")
            phases.append(
                Phase(_rules_from(phase.get("rules"), f"{where}.rules", errors), phase.get("starting_balance"))
            )
        known = {f.name for f in fields(cls)} - {"rules", "phases", "payout"}
        for key in data:
            if key not in known:
                errors.setdefault(str(key), []).append("unknown setting")
        if errors:
            raise EngineValidationError(errors)
        config = cls(**{k: v for k, v in data.items() if k in known}, rules=rules, phases=tuple(phases), payout=payout)
        config.validate(limits)
        return config

    def phase_list(self) -> list[tuple[Rules, float]]:
        """The rules and starting balance of each phase in turn: the config's own rules and
        balance as one phase when it has none."""
        if not self.phases:
            return [(self.rules, self.starting_balance)]
        return [
            (p.rules, self.starting_balance if p.starting_balance is None else p.starting_balance) for p in self.phases
        ]

    def validate(self, limits: EngineLimits = EngineLimits()) -> None:
        """Raise :class:`EngineValidationError` listing every invalid field."""
        errors: dict[str, list[str]] = {}

        def bad(name: str, reason: str) -> None:
            errors.setdefault(name, []).append(reason)

        bounds = setting_bounds(limits)
        for name in INTEGER_SETTINGS:
            value = getattr(self, name)
            if name == "paths" and value == "auto":
                continue
            if value is None and name in ("horizon", "seed", "trades_per_day"):
                continue
            low, high = bounds[name]
            if not _is_int(value) or not low <= value <= high:
                what = '"auto" or an integer' if name == "paths" else "an integer"
                bad(name, f"must be {what} from {low} to {high}")
        for name in NUMBER_SETTINGS:
            value = getattr(self, name)
            low, high = bounds[name]
            if not _is_number(value) or not low <= float(value) <= high:
                bad(name, f"must be a number from {low:g} to {high:g}")
        if self.method not in METHODS:
            bad("method", f"must be one of {', '.join(METHODS)}")
        if self.mode not in MODES:
            bad("mode", f"must be one of {', '.join(MODES)}")
        if not _is_number(self.starting_balance) or not MIN_BALANCE <= float(self.starting_balance) < MAX_AMOUNT:
            bad("starting_balance", f"must be a number from {MIN_BALANCE:g} to {MAX_AMOUNT:g}")
        if self.unit not in UNITS:
            bad("unit", f"must be one of {', '.join(UNITS)}")
        if not isinstance(self.stop_at_decision, bool):
            bad("stop_at_decision", "must be true or false")

        balance_ok = "starting_balance" not in errors
        if self.phases:
            if not isinstance(self.phases, tuple) or len(self.phases) > MAX_PHASES:
                bad("phases", f"at most {MAX_PHASES} phases")
            if self.rules != Rules():
                bad("rules", "with phases, each phase has its own rules")
            for i, phase in enumerate(self.phases):
                start: Any = phase.starting_balance if phase.starting_balance is not None else self.starting_balance
                if phase.starting_balance is not None and (
                    not _is_number(start) or not MIN_BALANCE <= float(start) < MAX_AMOUNT
                ):
                    bad(f"phases[{i}].starting_balance", f"must be a number from {MIN_BALANCE:g} to {MAX_AMOUNT:g}")
                    start = None
                elif phase.starting_balance is None and not balance_ok:
                    start = None
                if phase.rules.profit_target is None:
                    bad(f"phases[{i}].rules.profit_target", "a phase is passed by reaching its target: give one")
                _check_rules(phase.rules, start, self.mode, f"phases[{i}].rules", bad)
        else:
            _check_rules(self.rules, self.starting_balance if balance_ok else None, self.mode, "rules", bad)
        if self.payout is not None:
            _check_payout(self, bad)
        if errors:
            raise EngineValidationError(errors)

    def with_seed(self, seed: int) -> SimulationConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """The effective config, snake_case, JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("rules", "phases", "payout")}
        data["rules"] = _rules_dict(self.rules)
        data["phases"] = [{"rules": _rules_dict(p.rules), "starting_balance": p.starting_balance} for p in self.phases]
        payout = self.payout
        data["payout"] = None if payout is None else {f.name: getattr(payout, f.name) for f in fields(PayoutPolicy)}
        return data

    def general(self) -> bool:
        """Does a rule need the general kernel (``Rules.general``), or are there phases or payouts?"""
        return bool(self.phases) or self.payout is not None or self.rules.general()

    def needs_days(self) -> list[str]:
        """The rules that count days, by field path (``rules.consistency``, ``phases[1].rules...``,
        ``payout``: payouts are taken at a day's close)."""
        if not self.phases:
            return [f"rules.{name}" for name in self.rules.needs_days()] + (["payout"] if self.payout else [])
        return [f"phases[{i}].rules.{name}" for i, p in enumerate(self.phases) for name in p.rules.needs_days()]


def _check_rules(r: Rules, balance: float | None, mode: str, where: str, bad: Callable[[str, str], None]) -> None:
    """Every problem of one set of rules (the config's, or a phase's, at ``where``), with
    the account's starting balance (None: not valid itself, so not compared)."""
    errors: set[str] = set()

    def note(name: str, reason: str) -> None:
        errors.add(name)
        bad(name, reason)

    for name in ("profit_target", "max_drawdown", "daily_loss_limit"):
        value = getattr(r, name)
        if value is not None and (not _is_number(value) or not 0 < float(value) < MAX_AMOUNT):
            note(f"{where}.{name}", "must be a positive amount")
    if r.ruin_level is not None and (not _is_number(r.ruin_level) or not math.isfinite(r.ruin_level)):
        note(f"{where}.ruin_level", "must be a finite amount")
    if r.drawdown_type not in DRAWDOWN_TYPES:
        note(f"{where}.drawdown_type", f"must be one of {', '.join(DRAWDOWN_TYPES)}")
    if r.trailing_basis not in TRAILING_BASES:
        note(f"{where}.trailing_basis", f"must be one of {', '.join(TRAILING_BASES)}")
    trailing = r.drawdown_type == "trailing" and r.max_drawdown is not None
    if r.trailing_basis == "end_of_day" and not trailing:
        note(f"{where}.trailing_basis", "applies to a trailing max_drawdown only")
    if r.trailing_lock is not None:
        if not _is_number(r.trailing_lock) or not 0 <= float(r.trailing_lock) < MAX_AMOUNT:
            note(f"{where}.trailing_lock", "must be an amount of 0 or more (above the starting balance)")
        elif not trailing:
            note(f"{where}.trailing_lock", "applies to a trailing max_drawdown only")
    for name in ("min_trading_days", "max_trading_days"):
        value = getattr(r, name)
        if value is not None and (not _is_int(value) or not 1 <= value <= MAX_TRADING_DAYS):
            note(f"{where}.{name}", f"must be an integer from 1 to {MAX_TRADING_DAYS}")
    min_days, max_days = r.min_trading_days, r.max_trading_days
    if (
        isinstance(min_days, int)
        and isinstance(max_days, int)
        and f"{where}.min_trading_days" not in errors
        and f"{where}.max_trading_days" not in errors
        and min_days > max_days
    ):
        note(f"{where}.min_trading_days", "must not exceed max_trading_days: no path could pass")
    if r.consistency is not None and (not _is_number(r.consistency) or not 0 < float(r.consistency) <= 1):
        note(f"{where}.consistency", "must be a share above 0 and at most 1")
    for name in ("min_trading_days", "consistency"):
        if getattr(r, name) is not None and r.profit_target is None:
            note(f"{where}.{name}", "conditions a pass: needs a profit_target")
    for name in ("time_limit_fails", "target_inclusive", "floors_inclusive"):
        if not isinstance(getattr(r, name), bool):
            note(f"{where}.{name}", "must be true or false")
    if (
        balance is not None
        and r.ruin_level is not None
        and f"{where}.ruin_level" not in errors
        and r.ruin_level >= balance
    ):
        note(f"{where}.ruin_level", "must be below the starting balance")
    if (
        balance is not None
        and r.max_drawdown is not None
        and f"{where}.max_drawdown" not in errors
        and r.drawdown_type == "static"
        and r.max_drawdown > balance
        and mode == "returns"
    ):
        note(f"{where}.max_drawdown", "exceeds the starting balance, which compounding returns never lose")


def _check_payout(config: SimulationConfig, bad: Callable[[str, str], None]) -> None:
    p = config.payout
    assert p is not None
    if config.phases:
        bad("payout", "payouts are a funded account's: give the funded account's rules, not phases")
    elif config.rules.profit_target is not None:
        bad("rules.profit_target", "a funded account with payouts has no target (a pass would end it)")
    if not _is_number(p.split) or not 0 < float(p.split) <= 1:
        bad("payout.split", "must be the trader's share: above 0 and at most 1")
    if p.cadence_days is not None and (not _is_int(p.cadence_days) or not 1 <= p.cadence_days <= MAX_TRADING_DAYS):
        bad("payout.cadence_days", f"must be null (on request) or an integer from 1 to {MAX_TRADING_DAYS}")
    if not _is_int(p.min_winning_days) or not 0 <= p.min_winning_days <= MAX_TRADING_DAYS:
        bad("payout.min_winning_days", f"must be an integer from 0 to {MAX_TRADING_DAYS}")
    for name in ("min_payout", "buffer", "winning_day_profit"):
        value = getattr(p, name)
        if not _is_number(value) or not 0 <= float(value) < MAX_AMOUNT:
            bad(f"payout.{name}", "must be an amount of 0 or more")
    if p.max_payout is not None and (not _is_number(p.max_payout) or not 0 < float(p.max_payout) < MAX_AMOUNT):
        bad("payout.max_payout", "must be null or a positive amount")
    if p.fees is not None and (not _is_number(p.fees) or not 0 <= float(p.fees) < MAX_AMOUNT):
        bad("payout.fees", "must be null or an amount of 0 or more")
    if p.after_payout not in AFTER_PAYOUT:
        bad("payout.after_payout", f"must be one of {', '.join(AFTER_PAYOUT)}")
    if (
        _is_number(p.max_payout)
        and _is_number(p.min_payout)
        and p.max_payout is not None
        and float(p.max_payout) < float(p.min_payout)
    ):
        bad("payout.max_payout", "is below min_payout: no payout could be taken")


def _payout_from(data: Any, errors: dict[str, list[str]]) -> PayoutPolicy | None:
    """A PayoutPolicy from a mapping (None: no payouts), its unknown keys recorded in ``errors``."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        errors.setdefault("payout", []).append("must be an object")
        return None
    known = {f.name for f in fields(PayoutPolicy)}
    for key in data:
        if key not in known:
            errors.setdefault(f"payout.{key}", []).append("unknown setting of a payout policy")
    return PayoutPolicy(**{k: v for k, v in data.items() if k in known})


def _rules_dict(rules: Rules) -> dict[str, Any]:
    return {f.name: getattr(rules, f.name) for f in fields(Rules)}


def _rules_from(data: Any, where: str, errors: dict[str, list[str]]) -> Rules:
    """A Rules from a mapping, its unknown keys recorded in ``errors``."""
    if data is None:
        return Rules()
    if not isinstance(data, Mapping):
        errors.setdefault(where, []).append("must be an object")
        return Rules()
    known = {f.name for f in fields(Rules)}
    for key in data:
        if key not in known:
            errors.setdefault(f"{where}.{key}", []).append("unknown rule")
    return Rules(**{k: v for k, v in data.items() if k in known})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        return False
