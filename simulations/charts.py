"""Pictures of a result, drawn with matplotlib: the equity fan with the firm's rule
lines, and the final P&L histogram with the outcome probabilities.

Each takes a stored result (``SimulationResult.to_dict()``) and returns SVG or PNG
bytes. matplotlib's object API (``Figure``), not pyplot: no global state, so threads
of one web process can draw at once. matplotlib is imported on the first chart only:
the workers, which import this module's names, never load it. SVG text stays text (``svg.fonttype: none``),
small and searchable, and a fixed hash salt makes the same result the same bytes.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from simulations.engine.stats import Z95

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHARTS = ("fan", "histogram")
FORMATS = ("svg", "png")
CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
WIDTH = (200, 2000)  # pixels, inclusive
HEIGHT = (150, 1500)
DPI = 100

_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "montecarlo", "font.size": 10}
_BAND = "#2b6cb0"
_TARGET, _FLOOR, _RUIN = "#2f855a", "#c05621", "#9b2c2c"


def render(result: dict[str, Any], *, chart: str, fmt: str, width: int = 800, height: int = 450) -> bytes:
    """One chart of a finished job's result."""
    figure = _figure(width, height)
    if chart == "fan":
        _draw_fan(figure, result)
    elif chart == "histogram":
        _draw_histogram(figure, result)
    else:
        raise ValueError(f"unknown chart {chart!r}")
    return _save(figure, fmt)


def render_book(reports: list[dict[str, Any]], *, fmt: str, width: int = 800, height: int = 400) -> bytes:
    """The book over its run dates: expected payouts with their 95% interval (left axis)
    and expected breaches (right axis). ``reports``: oldest first, each with ``run_date``,
    ``expected_payouts``, ``payouts_std`` and ``expected_breaches``."""
    figure = _figure(width, height)
    ax = figure.subplots()
    if not reports:
        ax.text(0.5, 0.5, "no book reports yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(figure, fmt)
    days = [str(r["run_date"]) for r in reports]
    paid = [r["expected_payouts"] for r in reports]
    half = [Z95 * r["payouts_std"] for r in reports]
    low = [max(p - h, 0.0) for p, h in zip(paid, half, strict=True)]
    high = [p + h for p, h in zip(paid, half, strict=True)]
    ax.fill_between(days, low, high, color=_BAND, alpha=0.2, label="95% interval")
    ax.plot(days, paid, color=_BAND, marker="o", label="expected payouts")
    ax.set_ylabel("expected payouts")
    ax.tick_params(axis="x", labelrotation=45)
    breaches = ax.twinx()
    breaches.plot(days, [r["expected_breaches"] for r in reports], color=_RUIN, marker="s", label="expected breaches")
    breaches.set_ylabel("expected breaches")
    ax.legend(loc="upper left")
    breaches.legend(loc="upper right")
    ax.set_title("the book after each daily run (intervals: accounts independent)")
    return _save(figure, fmt)


def placeholder(text: str, *, fmt: str, width: int = 800, height: int = 450) -> bytes:
    """A picture that says why there is no chart yet (pending, 40% done, failed)."""
    figure = _figure(width, height)
    figure.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#4a5568")
    return _save(figure, fmt)


def rule_levels(result: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(label, equity level, colour) of each rule the fan shows, from the result's config."""
    config = result["config"]
    rules, start = config.get("rules") or {}, float(config["starting_balance"])
    levels = []
    if rules.get("profit_target") is not None:
        levels.append(("target", start + float(rules["profit_target"]), _TARGET))
    if rules.get("max_drawdown") is not None:
        trailing = rules.get("drawdown_type") == "trailing"
        label = "trailing floor (at its start)" if trailing else "max drawdown floor"
        levels.append((label, start - float(rules["max_drawdown"]), _FLOOR))
    if rules.get("ruin_level") is not None:
        levels.append(("ruin", float(rules["ruin_level"]), _RUIN))
    return levels


def _figure(width: int, height: int) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    # fixed margins: the constrained layout engine measured ≈ 40% of a chart's time
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.12, top=0.92)
    return figure


def _save(figure: Figure, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    import matplotlib

    out = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()


def _draw_fan(figure: Figure, result: dict[str, Any]) -> None:
    fan = result["equity_fan"]
    steps, bands = fan["steps"], fan["bands"]
    ax = figure.add_subplot()
    ax.fill_between(steps, bands["p5"], bands["p95"], color=_BAND, alpha=0.15, lw=0, label="p5–p95")
    ax.fill_between(steps, bands["p25"], bands["p75"], color=_BAND, alpha=0.3, lw=0, label="p25–p75")
    ax.plot(steps, bands["p50"], color=_BAND, lw=1.8, label="median")
    for label, level, colour in rule_levels(result):
        ax.axhline(level, color=colour, lw=1.2, ls="--", label=label)
    ax.set_title(f"Equity over {result['horizon']} {result['unit']}s, {fan['paths']:,} of {result['paths']:,} paths")
    ax.set_xlabel(f"{result['unit']}s")
    ax.set_ylabel("equity")
    ax.set_xlim(steps[0], steps[-1])
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, frameon=False)


def _draw_histogram(figure: Figure, result: dict[str, Any]) -> None:
    hist, probabilities = result["histogram"], result["probabilities"]
    edges, counts = hist["edges"], hist["counts"]
    ax = figure.add_subplot()
    # one patch for all bins (stairs), not a rectangle each: half the drawing time
    ax.stairs(counts, edges, fill=True, color=_BAND, alpha=0.7)
    ax.axvline(0, color="#4a5568", lw=1)
    ax.set_title(f"Final P&L across {result['paths']:,} paths")
    ax.set_xlabel("final P&L")
    ax.set_ylabel("paths")
    ax.grid(alpha=0.25, axis="y")
    lines = [
        f"P({name}) {probabilities[name]['estimate']:.1%}"
        for name in ("pass", "fail", "ruin", "profit")
        if name in probabilities
    ]
    if hist["below"] or hist["above"]:
        lines.append(f"outside: {hist['below']:,} below, {hist['above']:,} above")
    ax.text(
        0.98,
        0.95,
        "\n".join(lines),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=9,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "#cbd5e0"},
    )
