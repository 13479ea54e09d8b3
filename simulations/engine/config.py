"""Typed, validated simulation settings.

``SimulationConfig.from_dict`` takes snake_case keys (the service converts the API's
camelCase before it calls the engine) and reports every problem at once through
:class:`EngineValidationError`, naming each field by its path (``rules.max_drawdown``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .errors import EngineValidationError

Method = Literal["bootstrap", "permutation", "block"]
Mode = Literal["pnl", "returns"]
DrawdownType = Literal["static", "trailing"]
TrailingBasis = Literal["intraday", "end_of_day"]
Unit = Literal["auto", "trade", "day"]

METHODS: tuple[str, ...] = ("bootstrap", "permutation", "block")
MODES: tuple[str, ...] = ("pnl", "returns")
DRAWDOWN_TYPES: tuple[str, ...] = ("static", "trailing")
TRAILING_BASES: tuple[str, ...] = ("intraday", "end_of_day")
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
        rules_data = data.pop("rules", None) or {}
        if not isinstance(rules_data, Mapping):
            errors.setdefault("rules", []).append("must be an object")
            rules_data = {}
        known = {f.name for f in fields(cls)} - {"rules"}
        known_rules = {f.name for f in fields(Rules)}
        for key in data:
            if key not in known:
                errors.setdefault(str(key), []).append("unknown setting")
        for key in rules_data:
            if key not in known_rules:
                errors.setdefault(f"rules.{key}", []).append("unknown rule")
        if errors:
            raise EngineValidationError(errors)
        rules = Rules(**{k: v for k, v in rules_data.items() if k in known_rules})
        config = cls(**{k: v for k, v in data.items() if k in known}, rules=rules)
        config.validate(limits)
        return config

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

        r = self.rules
        for name in ("profit_target", "max_drawdown", "daily_loss_limit"):
            value = getattr(r, name)
            if value is not None and (not _is_number(value) or not 0 < float(value) < MAX_AMOUNT):
                bad(f"rules.{name}", "must be a positive amount")
        if r.ruin_level is not None and (not _is_number(r.ruin_level) or not math.isfinite(r.ruin_level)):
            bad("rules.ruin_level", "must be a finite amount")
        if r.drawdown_type not in DRAWDOWN_TYPES:
            bad("rules.drawdown_type", f"must be one of {', '.join(DRAWDOWN_TYPES)}")
        if r.trailing_basis not in TRAILING_BASES:
            bad("rules.trailing_basis", f"must be one of {', '.join(TRAILING_BASES)}")
        trailing = r.drawdown_type == "trailing" and r.max_drawdown is not None
        if r.trailing_basis == "end_of_day" and not trailing:
            bad("rules.trailing_basis", "applies to a trailing max_drawdown only")
        if r.trailing_lock is not None:
            if not _is_number(r.trailing_lock) or not 0 <= float(r.trailing_lock) < MAX_AMOUNT:
                bad("rules.trailing_lock", "must be an amount of 0 or more (above the starting balance)")
            elif not trailing:
                bad("rules.trailing_lock", "applies to a trailing max_drawdown only")
        for name in ("min_trading_days", "max_trading_days"):
            value = getattr(r, name)
            if value is not None and (not _is_int(value) or not 1 <= value <= MAX_TRADING_DAYS):
                bad(f"rules.{name}", f"must be an integer from 1 to {MAX_TRADING_DAYS}")
        min_days, max_days = r.min_trading_days, r.max_trading_days
        if (
            isinstance(min_days, int)
            and isinstance(max_days, int)
            and "rules.min_trading_days" not in errors
            and "rules.max_trading_days" not in errors
            and min_days > max_days
        ):
            bad("rules.min_trading_days", "must not exceed max_trading_days: no path could pass")
        if r.consistency is not None and (not _is_number(r.consistency) or not 0 < float(r.consistency) <= 1):
            bad("rules.consistency", "must be a share above 0 and at most 1")
        for name in ("min_trading_days", "consistency"):
            if getattr(r, name) is not None and r.profit_target is None:
                bad(f"rules.{name}", "conditions a pass: needs a profit_target")
        for name in ("time_limit_fails", "target_inclusive", "floors_inclusive"):
            if not isinstance(getattr(r, name), bool):
                bad(f"rules.{name}", "must be true or false")
        balance_ok = "starting_balance" not in errors
        if (
            balance_ok
            and r.ruin_level is not None
            and "rules.ruin_level" not in errors
            and r.ruin_level >= self.starting_balance
        ):
            bad("rules.ruin_level", "must be below the starting balance")
        if (
            balance_ok
            and r.max_drawdown is not None
            and "rules.max_drawdown" not in errors
            and r.drawdown_type == "static"
            and r.max_drawdown > self.starting_balance
            and self.mode == "returns"
        ):
            bad("rules.max_drawdown", "exceeds the starting balance, which compounding returns never lose")
        if errors:
            raise EngineValidationError(errors)

    def with_seed(self, seed: int) -> SimulationConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """The effective config, snake_case, JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rules"}
        data["rules"] = {f.name: getattr(self.rules, f.name) for f in fields(Rules)}
        return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        return False
