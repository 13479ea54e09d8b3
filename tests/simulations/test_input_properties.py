"""Property tests of the parsers every request goes through: the config, the trades and
the whole job request. Whatever JSON a caller sends, each answers with a value or a
validation error naming the field; never another exception (a 500 at the API). Valid
input parses to what was sent."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import fields

import pytest
from djangorestframework_camel_case.util import underscoreize
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simulations.engine import EngineValidationError, Rules, SimulationConfig, TradeHistory
from simulations.engine.config import INTEGER_SETTINGS, NUMBER_SETTINGS, setting_bounds
from simulations.errors import InvalidInput
from simulations.models import ApiClient
from simulations.services.jobs import build_job
from simulations.wire import snake_keys

PROPERTY = settings(
    max_examples=1500, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),  # beyond any float too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["auto", "2026-03-02", "2026-03-02T14:30:00Z", "1e308", "1e999", "nan", "-0", "\x00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CONFIG_KEYS = [f.name for f in fields(SimulationConfig) if f.name not in ("rules", "phases")]
RULE_KEYS = [f.name for f in fields(Rules)]
config_dicts = st.dictionaries(
    st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=6)),
    json_values,
    max_size=6,
) | st.fixed_dictionaries(
    {"rules": st.dictionaries(st.one_of(st.sampled_from(RULE_KEYS), st.text(max_size=6)), json_values, max_size=5)}
)
trade_records = st.lists(
    st.one_of(
        scalars,
        st.dictionaries(
            st.sampled_from(
                ["pnl", "return", "value", "profit", "closedAt", "closed_at", "date", "timestamp", "mae", "x"]
            ),
            scalars,
            max_size=3,
        ),
    ),
    max_size=8,
)


def named_fields(exc: EngineValidationError) -> set[str]:
    assert exc.errors and all(reasons and all(isinstance(r, str) for r in reasons) for reasons in exc.errors.values())
    return set(exc.errors)


# keys as callers spell them: camelCase, snake_case, capitals and digits in runs
wire_keys = st.one_of(
    st.text(alphabet="aZbY09_", max_size=8), st.sampled_from(["maxDrawdown", "HTTPCode", "x2Y", "fan3d", "ABc", "a_B"])
)
wire_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(wire_keys, inner, max_size=4),
    max_leaves=16,
)


@PROPERTY
@given(wire_values)
@example({"rules": {"maxDrawdown": 1, "profit_target": [{"closedAt": 1}]}, "fanPoints": 2})
def test_snake_keys_converts_as_the_librarys_underscoreize(data):
    # compared as JSON: NaN is not equal to itself, and the keys' order counts too
    assert json.dumps(snake_keys(data)) == json.dumps(underscoreize(data))


@PROPERTY
@given(config_dicts)
@example({"paths": True})  # a bool is not a count
@example({"rules": {"max_drawdown": 10**400}})
@example({"block_size": "1e999"})
@example({"phases": [None]})  # a phase that is not an object, named by its position
def test_a_config_parses_or_names_its_fields(data):
    try:
        config = SimulationConfig.from_dict(data)
    except EngineValidationError as exc:
        for name in named_fields(exc):  # an unknown key by its own name, or a known field
            top = name.split(".")[0].split("[")[0]  # phases[2].rules.x: the phases setting
            assert name in map(str, data) or top in {"rules", "phases", *CONFIG_KEYS}, (name, data)
        return
    config.validate()  # what parsed is valid, and stays so
    for name in INTEGER_SETTINGS:
        value = getattr(config, name)
        assert value is None or value == "auto" or (type(value) is int and not isinstance(value, bool))
    for name in NUMBER_SETTINGS:
        low, high = setting_bounds()[name]
        assert low <= float(getattr(config, name)) <= high


@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: st.integers(min_value=low, max_value=high)
            for name, (low, high) in setting_bounds().items()
            if name in INTEGER_SETTINGS
        },
    )
)
def test_every_value_within_the_stated_bounds_is_accepted_as_sent(data):
    data = {k: v for k, v in data.items() if not (k == "auto_max_paths" and v < 1_000)}
    config = SimulationConfig.from_dict(data)
    assert all(getattr(config, k) == v for k, v in data.items())


@PROPERTY
@given(trade_records)
@example([{"pnl": True}])  # JSON true is not an amount
@example([{"pnl": 10**400}])
@example([{"pnl": 1.0, "closedAt": "2026-02-30"}])
def test_trades_parse_or_name_the_trade(records):
    try:
        history = TradeHistory.from_records(records)
        history.validate()  # as every caller does: the sizes, finiteness
    except EngineValidationError as exc:
        for name in named_fields(exc):
            assert name == "trades" or name.startswith("trades["), name
        return
    assert len(history) == len(records)
    assert all(math.isfinite(v) for v in history.values)
    for record in records:
        value = (
            record
            if not isinstance(record, dict)
            else next(
                (record[k] for k in ("pnl", "return", "value", "profit") if record.get(k) not in (None, "")), None
            )
        )
        assert not isinstance(value, bool), records


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
            st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_valid_trades_parse_to_what_was_sent(trades):
    records = [{"pnl": pnl, "closedAt": at.isoformat() + "Z"} for pnl, at in trades]
    history = TradeHistory.from_records(records)
    assert list(history.values) == [pnl for pnl, _ in trades]
    assert list(history.days) == [at.date().toordinal() for _, at in trades]


@pytest.mark.django_db
@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "assessment_id": json_values,
            "funded_account_id": json_values,
            "config": json_values | config_dicts,
            "trades": json_values | trade_records,
        },
    )
)
@example({"assessment_id": "A", "trades": [{"pnl": 1.0, "closedAt": "2026-03-02"}], "config": {"paths": "auto"}})
@example({"assessment_id": "A\x00", "trades": [{"pnl\x00": 1.0}]})
def test_a_job_request_becomes_a_job_or_names_its_fields(request_fields):
    client = ApiClient(name="property", scopes=["submit"])  # unsaved: nothing is written
    try:
        job = build_job(**request_fields, client=client)
    except InvalidInput as exc:
        assert exc.errors and all(isinstance(field, str) for field in exc.errors)
        return
    assert job.assessment_id or job.funded_account_id
    assert job.samples_planned >= 0 and len(job.request_fingerprint) == 64
