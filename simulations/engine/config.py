"""Typed, validated simulation settings.

``SimulationConfig.from_dict`` accepts the API's camelCase or snake_case keys and
reports every problem at once through :class:`EngineValidationError`, naming fields
the way the API spells them (``rules.maxDrawdown``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .errors import EngineValidationError

Method = Literal["bootstrap", "permutation", "block"]
Mode = Literal["pnl", "returns"]
DrawdownType = Literal["static", "trailing"]
Unit = Literal["auto", "trade", "day"]

METHODS: tuple[str, ...] = ("bootstrap", "permutation", "block")
MODES: tuple[str, ...] = ("pnl", "returns")
DRAWDOWN_TYPES: tuple[str, ...] = ("static", "trailing")
UNITS: tuple[str, ...] = ("auto", "trade", "day")


@dataclass(frozen=True)
class EngineLimits:
    """Upper bounds that protect a worker from absurd requests (settings may raise them)."""

    max_paths: int = 5_000_000
    max_horizon: int = 100_000
    max_samples: int = 20_000_000_000  # paths x horizon x mean unit length
    max_history: int = 1_000_000


@dataclass(frozen=True)
class Rules:
    """The firm's rules, replayed on every path. ``None`` switches a rule off.

    Amounts are in account currency. ``profit_target`` is profit over the starting
    balance; ``max_drawdown`` is measured from the starting balance (``static``) or
    from the path's high-water mark (``trailing``); ``daily_loss_limit`` from the
    equity at the start of each simulated day; ``ruin_level`` is an account balance
    (default 0): reaching it ends the path.
    """

    profit_target: float | None = None
    max_drawdown: float | None = None
    drawdown_type: DrawdownType = "static"
    daily_loss_limit: float | None = None
    ruin_level: float | None = None


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
        """Build and validate a config from API-shaped data (camelCase or snake_case)."""
        data = _snake_keys(dict(data or {}))
        errors: dict[str, list[str]] = {}
        rules_data = data.pop("rules", None) or {}
        if not isinstance(rules_data, Mapping):
            errors.setdefault("rules", []).append("must be an object")
            rules_data = {}
        rules_data = _snake_keys(dict(rules_data))
        known = {f.name for f in fields(cls)} - {"rules"}
        known_rules = {f.name for f in fields(Rules)}
        for key in data:
            if key not in known:
                errors.setdefault(_camel(key), []).append("unknown setting")
        for key in rules_data:
            if key not in known_rules:
                errors.setdefault(f"rules.{_camel(key)}", []).append("unknown rule")
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

        if self.paths != "auto" and (not _is_int(self.paths) or not 1 <= self.paths <= limits.max_paths):
            bad("paths", f'must be "auto" or an integer from 1 to {limits.max_paths}')
        if self.horizon is not None and (not _is_int(self.horizon) or not 1 <= self.horizon <= limits.max_horizon):
            bad("horizon", f"must be an integer from 1 to {limits.max_horizon}")
        if self.method not in METHODS:
            bad("method", f"must be one of {', '.join(METHODS)}")
        if not _is_number(self.block_size) or not 1.0 <= float(self.block_size) <= 10_000:
            bad("blockSize", "must be a number from 1 to 10000 (mean block length)")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed < 2**63):
            bad("seed", "must be an integer from 0 to 2**63-1")
        if self.mode not in MODES:
            bad("mode", f"must be one of {', '.join(MODES)}")
        if not _is_number(self.starting_balance) or not 0 < float(self.starting_balance) < 1e15:
            bad("startingBalance", "must be a positive number")
        if self.unit not in UNITS:
            bad("unit", f"must be one of {', '.join(UNITS)}")
        if self.trades_per_day is not None and (
            not _is_int(self.trades_per_day) or not 1 <= self.trades_per_day <= 100_000
        ):
            bad("tradesPerDay", "must be an integer from 1 to 100000")
        if not isinstance(self.stop_at_decision, bool):
            bad("stopAtDecision", "must be true or false")
        if not _is_number(self.auto_tolerance) or not 1e-4 <= float(self.auto_tolerance) <= 0.5:
            bad("autoTolerance", "must be a number from 0.0001 to 0.5")
        if not _is_int(self.auto_max_paths) or not 1_000 <= self.auto_max_paths <= limits.max_paths:
            bad("autoMaxPaths", f"must be an integer from 1000 to {limits.max_paths}")
        if not _is_int(self.band_paths) or not 1 <= self.band_paths <= 100_000:
            bad("bandPaths", "must be an integer from 1 to 100000")
        if not _is_int(self.fan_points) or not 2 <= self.fan_points <= 200:
            bad("fanPoints", "must be an integer from 2 to 200")
        if not _is_int(self.histogram_bins) or not 1 <= self.histogram_bins <= 1_000:
            bad("histogramBins", "must be an integer from 1 to 1000")

        r = self.rules
        for name in ("profit_target", "max_drawdown", "daily_loss_limit"):
            value = getattr(r, name)
            if value is not None and (not _is_number(value) or not 0 < float(value) < 1e15):
                bad(f"rules.{_camel(name)}", "must be a positive amount")
        if r.ruin_level is not None and (not _is_number(r.ruin_level) or not math.isfinite(r.ruin_level)):
            bad("rules.ruinLevel", "must be a finite amount")
        if r.drawdown_type not in DRAWDOWN_TYPES:
            bad("rules.drawdownType", f"must be one of {', '.join(DRAWDOWN_TYPES)}")
        balance_ok = "startingBalance" not in errors
        if (
            balance_ok
            and r.ruin_level is not None
            and "rules.ruinLevel" not in errors
            and r.ruin_level >= self.starting_balance
        ):
            bad("rules.ruinLevel", "must be below the starting balance")
        if (
            balance_ok
            and r.max_drawdown is not None
            and "rules.maxDrawdown" not in errors
            and r.drawdown_type == "static"
            and r.max_drawdown > self.starting_balance
            and self.mode == "returns"
        ):
            bad("rules.maxDrawdown", "exceeds the starting balance, which compounding returns never lose")
        if (
            r.daily_loss_limit is not None
            and r.max_drawdown is not None
            and "rules.dailyLossLimit" not in errors
            and "rules.maxDrawdown" not in errors
            and r.daily_loss_limit > r.max_drawdown
            and r.drawdown_type == "static"
        ):
            bad("rules.dailyLossLimit", "is larger than the static maxDrawdown, so it could never apply")
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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", key).lower()


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _snake_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {_snake(str(k)): v for k, v in data.items()}
