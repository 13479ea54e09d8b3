"""Trade histories: the input every simulation resamples.

A history is an ordered array of per-trade values (P&L in account currency, or
fractional returns) and, optionally, the calendar day of each trade and its maximum
adverse excursion (``mae``: the worst open loss before the close, an amount, or a
fraction of the equity in returns mode). When days are known the engine can resample
whole days, keeping each day's intraday order real.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._typing import Float64Array, Int64Array
from .errors import EngineValidationError

VALUE_KEYS = ("pnl", "return", "value", "profit")
MAE_KEY = "mae"
TIME_KEYS = ("timestamp", "closed_at", "closedAt", "close_time", "closeTime", "date", "time")


@dataclass(frozen=True, eq=False)
class TradeHistory:
    """Trade values in order, with the day (ordinal) and the max adverse excursion of
    each trade when known."""

    values: Float64Array
    days: Int64Array | None = None
    mae: Float64Array | None = None

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float64)
        object.__setattr__(self, "values", values)
        if self.days is not None:
            days = np.ascontiguousarray(self.days, dtype=np.int64)
            if days.shape != values.shape:
                raise EngineValidationError.single("trades", "every trade needs a date, or none")
            object.__setattr__(self, "days", days)
        if self.mae is not None:
            mae = np.ascontiguousarray(self.mae, dtype=np.float64)
            if mae.shape != values.shape:
                raise EngineValidationError.single("trades", "every trade needs an mae, or none")
            object.__setattr__(self, "mae", mae)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def validate(self, *, mode: str = "pnl", max_history: int = 1_000_000) -> None:
        if self.values.ndim != 1 or len(self) == 0:
            raise EngineValidationError.single("trades", "the trade history is empty")
        if len(self) > max_history:
            raise EngineValidationError.single("trades", f"more than {max_history} trades")
        bad = ~np.isfinite(self.values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise EngineValidationError.single("trades", f"trade {first} is NaN or infinite")
        if mode == "returns" and (self.values <= -1.0).any():
            raise EngineValidationError.single("trades", "a return of -100% or less cannot be compounded")
        if self.days is not None and (np.diff(self.days) < 0).any():
            raise EngineValidationError.single("trades", "trades must be in time order")
        if self.mae is not None:
            top = 1.0 if mode == "returns" else math.inf  # a fraction of the equity, or an amount
            bad = ~(np.isfinite(self.mae) & (self.mae >= 0.0) & (self.mae < top))
            if bad.any():
                what = "a fraction from 0 to below 1" if mode == "returns" else "a finite amount of 0 or more"
                raise EngineValidationError.single(f"trades[{int(np.flatnonzero(bad)[0])}].mae", f"must be {what}")

    def units(self, by_day: bool) -> tuple[Int64Array, Int64Array]:
        """Start offsets and lengths of the resampling units: single trades or whole days."""
        n = len(self)
        if not by_day:
            return np.arange(n, dtype=np.int64), np.ones(n, dtype=np.int64)
        assert self.days is not None
        change = np.flatnonzero(np.diff(self.days)) + 1
        starts = np.concatenate(([0], change)).astype(np.int64)
        lengths = np.diff(np.concatenate((starts, [n]))).astype(np.int64)
        return starts, lengths

    @classmethod
    def from_records(cls, records: Iterable[float | int | Mapping[str, Any]]) -> TradeHistory:
        """From the API's inline ``trades``: numbers, or objects with a value and a time."""
        values: list[float] = []
        days: list[int | None] = []
        maes: list[float | None] = []
        for i, rec in enumerate(records):
            # dict first: a Mapping check is an ABC's, ≈ 16% of a history's parse
            if isinstance(rec, (dict, Mapping)):
                values.append(_value_of(rec, i))
                days.append(_day_of(rec, i))
                maes.append(_mae_of(rec, i))
            elif isinstance(rec, (int, float)) and not isinstance(rec, bool):
                try:
                    values.append(float(rec))
                except OverflowError:  # an integer beyond any float
                    raise EngineValidationError.single(f"trades[{i}]", "must be a number") from None
                days.append(None)
                maes.append(None)
            else:
                raise EngineValidationError.single(f"trades[{i}]", "must be a number or an object with pnl")
        return cls._build(values, days, maes)

    @classmethod
    def from_csv(cls, path: str, *, mae_column: str = MAE_KEY) -> TradeHistory:
        """From a CSV file with a ``pnl`` (or ``return``) column, an optional time column
        and an optional ``mae`` column (named ``mae_column``)."""
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not any(k in reader.fieldnames for k in VALUE_KEYS):
                raise EngineValidationError.single("trades", f"CSV needs a header with one of: {', '.join(VALUE_KEYS)}")
            if mae_column != MAE_KEY and mae_column not in reader.fieldnames:
                raise EngineValidationError.single("trades", f"CSV has no column {mae_column!r}")
            rows = list(reader)
        if mae_column != MAE_KEY:
            for row in rows:
                row[MAE_KEY] = row.pop(mae_column)
        return cls.from_records(rows)

    @classmethod
    def _build(cls, values: list[float], days: list[int | None], maes: list[float | None]) -> TradeHistory:
        known = [d is not None for d in days]
        if any(known) and not all(known):
            raise EngineValidationError.single("trades", "every trade needs a date, or none")
        arr = np.asarray(values, dtype=np.float64)
        day_arr = np.asarray(days, dtype=np.int64) if values and all(known) else None
        # a trade without an mae went no lower than its close
        mae_arr = np.asarray([m or 0.0 for m in maes], dtype=np.float64) if any(m is not None for m in maes) else None
        return cls(arr, day_arr, mae_arr)


def _value_of(rec: Mapping[str, Any], i: int) -> float:
    for key in VALUE_KEYS:
        if key in rec and rec[key] not in (None, ""):
            if isinstance(rec[key], bool):  # JSON true is not an amount (float() says 1.0)
                raise EngineValidationError.single(f"trades[{i}].{key}", "must be a number")
            try:
                value = float(rec[key])
            except (TypeError, ValueError, OverflowError):
                raise EngineValidationError.single(f"trades[{i}].{key}", "must be a number") from None
            if not math.isfinite(value):
                raise EngineValidationError.single(f"trades[{i}].{key}", "must be finite")
            return value
    raise EngineValidationError.single(f"trades[{i}]", f"needs one of: {', '.join(VALUE_KEYS)}")


def _mae_of(rec: Mapping[str, Any], i: int) -> float | None:
    raw = rec.get(MAE_KEY)
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        raise EngineValidationError.single(f"trades[{i}].{MAE_KEY}", "must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise EngineValidationError.single(f"trades[{i}].{MAE_KEY}", "must be a number") from None
    if not math.isfinite(value) or value < 0:
        raise EngineValidationError.single(f"trades[{i}].{MAE_KEY}", "must be a finite amount of 0 or more")
    return value


def _day_of(rec: Mapping[str, Any], i: int) -> int | None:
    if rec.keys().isdisjoint(TIME_KEYS):  # one call (in C for a dict), not seven lookups
        return None
    for key in TIME_KEYS:
        raw = rec.get(key)
        if raw in (None, ""):
            continue
        text = str(raw).strip().replace("Z", "+00:00")
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text).toordinal()
            return dt.datetime.fromisoformat(text).date().toordinal()
        except ValueError:
            raise EngineValidationError.single(f"trades[{i}].{key}", "must be an ISO 8601 date or time") from None
    return None
