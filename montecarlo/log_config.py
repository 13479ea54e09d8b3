"""One log format for every process (web, worker, beat, bridge): Python's logging with
structlog's formatter, so Django's, Celery's, gunicorn's and our own lines all carry
the ids in context (``simulations.log_context``): request, job, task, worker.

``LOG_FORMAT=json`` writes one JSON object a line (for a log pipeline), ``text`` (the
default) a readable line with the same keys; ``LOG_LEVEL`` sets the root level and
``LOG_LEVELS`` single loggers (``workers.kafka.relay=DEBUG,celery=WARNING``).
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

FORMATS = ("json", "text")


def _pre_chain() -> list[Any]:
    """What every record gets, ours or a library's: context ids, level, logger, time, pid."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _without_celery_task_data,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.CallsiteParameterAdder([structlog.processors.CallsiteParameter.PROCESS]),
    ]


def _without_celery_task_data(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Celery's task lines carry the whole message as an extra (``data``: args, kwargs,
    a batch's hundred job ids); their text already names the task and its id."""
    if str(event.get("logger", "")).startswith("celery"):
        event.pop("data", None)
    return event


def logging_config(*, fmt: str, level: str, levels: str = "") -> dict[str, Any]:
    """The ``LOGGING`` dict for Django (and, through it, Celery and gunicorn)."""
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    renderer: list[Any] = (
        [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
        if fmt == "json"
        # plain tracebacks: a rich one prints local variables, and a log is no place for those
        else [
            structlog.dev.ConsoleRenderer(
                colors=False, pad_event_to=0, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    loggers: dict[str, dict[str, Any]] = {"django.db.backends": {"level": "INFO"}}
    for item in filter(None, (part.strip() for part in levels.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"LOG_LEVELS takes logger=LEVEL pairs separated by commas, not {item!r}")
        loggers[name.strip()] = {"level": _level(value, f"LOG_LEVELS ({name.strip()})")}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _pre_chain(),
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
            }
        },
        # Celery retries a lost broker every few seconds and says so each time: once a minute
        "filters": {"once_per_outage": {"()": "simulations.log_context.OncePerOutage"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": _level(level, "LOG_LEVEL")},
        # gunicorn's own loggers write through the same handler (its config points here)
        "loggers": {
            "celery.worker.consumer.consumer": {"filters": ["once_per_outage"]},
            **loggers,
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }


def _level(value: str, setting: str) -> str:
    level = value.strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"{setting}: {value!r} is no log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return level
