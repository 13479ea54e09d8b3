"""The log format every process uses (montecarlo.log_config): JSON or text, with the ids
in context on every line, Django's, Celery's and our own alike, and settings that are
refused with a reason rather than half applied."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest

from montecarlo.log_config import logging_config
from simulations import log_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def configure():
    """Apply a config for one test, then put Django's back."""
    from django.conf import settings

    def apply(**kwargs: str) -> None:
        logging.config.dictConfig(logging_config(**kwargs))

    yield apply
    logging.config.dictConfig(settings.LOGGING)


def test_json_lines_carry_the_ids_in_context_and_the_record_s_extras(configure, capfd):
    configure(fmt="json", level="INFO")
    with log_context.bound_contextvars(request_id="r-1", job_id="j-1"):
        # Celery's own extra (the whole message) is left out; other extras are kept
        logging.getLogger("celery.app.trace").info("Task %s succeeded", "t", extra={"paths": 5, "data": {"args": [1]}})
    logging.getLogger("simulations.x").debug("below the level")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("simulations.x").exception("it failed")
    out = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert len(out) == 2
    first, second = out
    assert first["message"] == "Task t succeeded" and first["logger"] == "celery.app.trace"
    assert (first["request_id"], first["job_id"], first["paths"], first["level"]) == ("r-1", "j-1", 5, "info")
    assert first["timestamp"].endswith("Z") and isinstance(first["process"], int) and "data" not in first
    assert "request_id" not in second  # the context ended with its block
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_text_lines_say_the_same_without_local_variables(configure, capfd):
    configure(fmt="text", level="DEBUG", levels="noisy=WARNING")
    secret = "s3cr3t-value"  # noqa: F841 (a local a rich traceback would print)
    with log_context.bound_contextvars(request_id="r-2"):
        try:
            raise RuntimeError("bad")
        except RuntimeError:
            logging.getLogger("simulations.y").exception("job failed")
    logging.getLogger("noisy").info("not shown")
    err = capfd.readouterr().err
    assert "job failed [simulations.y]" in err and "request_id=r-2" in err and "RuntimeError: bad" in err
    assert "s3cr3t-value" not in err and "not shown" not in err


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"fmt": "xml", "level": "INFO"}, "LOG_FORMAT must be one of json, text"),
        ({"fmt": "json", "level": "INFO", "levels": "celery"}, "LOG_LEVELS takes logger=LEVEL pairs"),
        ({"fmt": "json", "level": "INFO", "levels": "a=INFO,=DEBUG"}, "LOG_LEVELS takes logger=LEVEL pairs"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        logging_config(**kwargs)


def test_a_bad_level_stops_the_process_with_a_message():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVELS": "celery=LOUD"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "LOG_LEVELS (celery): 'LOUD' is no log level" in done.stderr
