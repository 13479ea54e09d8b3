"""Bad input raises EngineValidationError naming the field."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulations.engine import (
    EngineLimits,
    EngineValidationError,
    SimulationConfig,
    TradeHistory,
    simulate,
)
from simulations.engine.config import INTEGER_SETTINGS, NUMBER_SETTINGS, setting_bounds

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "data,field",
    [
        ({"paths": 0}, "paths"),
        ({"paths": -5}, "paths"),
        ({"paths": "lots"}, "paths"),
        ({"paths": 10**9}, "paths"),
        ({"horizon": 0}, "horizon"),
        ({"method": "magic"}, "method"),
        ({"block_size": 0.5}, "block_size"),
        ({"block_size": float("nan")}, "block_size"),
        ({"seed": -1}, "seed"),
        ({"starting_balance": 0}, "starting_balance"),
        ({"mode": "log"}, "mode"),
        ({"trades_per_day": 0}, "trades_per_day"),
        ({"rules": {"max_drawdown": -10}}, "rules.max_drawdown"),
        ({"rules": {"profit_target": float("inf")}}, "rules.profit_target"),
        ({"rules": {"drawdown_type": "sideways"}}, "rules.drawdown_type"),
        ({"rules": {"ruin_level": 200_000}}, "rules.ruin_level"),
        ({"rules": {"bogus": 1}}, "rules.bogus"),
        ({"rules": "strict"}, "rules"),
        ({"colour": "red"}, "colour"),
        ({"blockSize": 4}, "blockSize"),  # the engine speaks snake_case; the service converts
    ],
)
def test_config_errors_name_the_field(data, field):
    with pytest.raises(EngineValidationError) as info:
        SimulationConfig.from_dict(data)
    assert field in info.value.errors, info.value.errors


def test_every_problem_is_reported_at_once():
    with pytest.raises(EngineValidationError) as info:
        SimulationConfig.from_dict({"paths": 0, "method": "x", "rules": {"max_drawdown": 0}})
    assert set(info.value.errors) == {"paths", "method", "rules.max_drawdown"}


@pytest.mark.parametrize("name", INTEGER_SETTINGS + NUMBER_SETTINGS)
def test_each_bound_is_inclusive_and_enforced(name):
    low, high = setting_bounds()[name]
    step = 1 if isinstance(low, int) else 1e-9 * max(1.0, abs(high))
    SimulationConfig.from_dict({name: low})
    SimulationConfig.from_dict({name: high})
    for outside in (low - step, high + step):
        with pytest.raises(EngineValidationError) as info:
            SimulationConfig.from_dict({name: outside})
        assert set(info.value.errors) == {name}


def test_limits_are_configurable():
    small = EngineLimits(max_paths=100)
    with pytest.raises(EngineValidationError) as info:
        SimulationConfig.from_dict({"paths": 101}, small)
    assert "paths" in info.value.errors
    with pytest.raises(EngineValidationError) as info:
        simulate([1.0, -1.0], SimulationConfig(paths=1000, horizon=1000), limits=EngineLimits(max_samples=10**5))
    assert "paths" in info.value.errors


@pytest.mark.parametrize(
    "history,config,field",
    [
        ([], SimulationConfig(), "trades"),
        ([1.0, float("nan")], SimulationConfig(), "trades"),
        ([1.0, math.inf], SimulationConfig(), "trades"),
        ([0.1, -1.5], SimulationConfig(mode="returns"), "trades"),
        ([1.0, 2.0], SimulationConfig(method="permutation", horizon=3), "horizon"),
        ([1.0, 2.0], SimulationConfig.from_dict({"rules": {"daily_loss_limit": 10}}), "rules.daily_loss_limit"),
        ([1.0, 2.0], SimulationConfig(unit="day"), "unit"),
    ],
)
def test_history_errors_name_the_field(history, config, field):
    with pytest.raises(EngineValidationError) as info:
        simulate(history, config)
    assert field in info.value.errors


def test_trade_records_are_parsed_and_checked():
    h = TradeHistory.from_records(
        [
            {"pnl": 10, "timestamp": "2026-01-05T10:00:00Z"},
            {"pnl": "-5", "timestamp": "2026-01-05T15:00:00+00:00"},
            {"pnl": 7, "date": "2026-01-06"},
        ]
    )
    assert h.values.tolist() == [10.0, -5.0, 7.0]
    assert h.days is not None and h.days.tolist()[0] == h.days.tolist()[1] != h.days.tolist()[2]
    with pytest.raises(EngineValidationError) as info:
        TradeHistory.from_records([{"pnl": "abc"}])
    assert "trades[0].pnl" in info.value.errors
    with pytest.raises(EngineValidationError) as info:
        TradeHistory.from_records([{"pnl": 1, "date": "2026-01-01"}, {"pnl": 2}])
    assert "trades" in info.value.errors
    with pytest.raises(EngineValidationError) as info:
        TradeHistory.from_records([{"pnl": 1, "date": "yesterday"}])
    assert "trades[0].date" in info.value.errors
    assert TradeHistory.from_records([1, 2.5]).days is None


def test_the_engine_imports_no_django():
    code = (
        "import sys, simulations.engine; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=dict(env, PYTHONPATH=str(ROOT))
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
