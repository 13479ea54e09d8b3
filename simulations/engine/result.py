"""The frozen result of one simulation, JSON-ready through ``to_dict``."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, cast

PERCENTILES: tuple[int, ...] = (1, 5, 10, 25, 50, 75, 90, 95, 99)
BAND_PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Distribution:
    """Summary of one per-path quantity across paths (all None when count is 0)."""

    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    percentiles: dict[str, float | None]  # "p1" .. "p99"


@dataclass(frozen=True)
class Probability:
    """A Monte Carlo probability with its standard error and 95% Wilson interval."""

    estimate: float
    std_error: float
    ci95_low: float
    ci95_high: float
    count: int


@dataclass(frozen=True)
class EquityFan:
    """Percentile bands of equity at up to 200 steps, from the first ``paths`` paths."""

    steps: list[int]
    bands: dict[str, list[float]]  # "p5" .. "p95"
    paths: int


@dataclass(frozen=True)
class Histogram:
    """Counts of final P&L in equal bins between p0.5 and p99.5, plus the tails."""

    edges: list[float]
    counts: list[int]
    below: int
    above: int


@dataclass(frozen=True)
class SimulationResult:
    """Everything a job reports; amounts in account currency, steps in units."""

    paths: int
    horizon: int
    unit: str  # "trade" or "day"
    seed: int
    config: dict[str, Any]
    final_pnl: Distribution
    final_return: Distribution
    max_drawdown: Distribution
    max_drawdown_pct: Distribution
    longest_losing_streak: Distribution
    steps_to_pass: Distribution | None
    probabilities: dict[str, Probability]  # profit, ruin, pass, fail, undecided
    failure_causes: dict[str, int]  # failed paths by the rule that failed them
    phase_pass: list[Probability] | None  # with phases: P(passing phase k), in order; pass = all of them
    ignored_settings: dict[str, str]  # settings given that did nothing here, and why
    equity_fan: EquityFan
    histogram: Histogram
    elapsed_seconds: float
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return cast("dict[str, Any]", _plain(self))

    def summary(self) -> dict[str, Any]:
        """The few numbers an event or a log line carries."""
        return {
            "paths": self.paths,
            "horizon": self.horizon,
            "seed": self.seed,
            "probabilityOfProfit": self.probabilities["profit"].estimate,
            "probabilityOfRuin": self.probabilities["ruin"].estimate,
            "probabilityOfPass": self.probabilities["pass"].estimate,
            "finalPnlP50": self.final_pnl.percentiles["p50"],
            "maxDrawdownP95": self.max_drawdown.percentiles["p95"],
        }


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, recursively: ``dataclasses.asdict`` without its deep copies
    (a third of a small job's engine time went there)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
