"""What every log line says about where it comes from: the request, job, task and worker
ids of the work in hand, kept in contextvars (each thread and each request its own) and
added to every record by the log formatter (``montecarlo.logging``).

``OncePerOutage`` keeps a client that retries a lost server every few milliseconds from
filling the log with the same line.

A request id is taken from the caller (``X-Request-ID``, a Kafka ``request-id`` header)
when it is a plain token, or made; it is stored with each job it creates and travels in
task headers and on the job's Kafka events, so one id finds a job's every line.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid

from structlog.contextvars import bind_contextvars, bound_contextvars, get_contextvars, unbind_contextvars

__all__ = [
    "HTTP_HEADER",
    "OncePerOutage",
    "KAFKA_HEADER",
    "TASK_HEADER",
    "bind_contextvars",
    "bound_contextvars",
    "clean_request_id",
    "current_request_id",
    "new_request_id",
    "unbind_contextvars",
]

HTTP_HEADER = "X-Request-ID"
KAFKA_HEADER = "request-id"
TASK_HEADER = "request_id"
MAX_LENGTH = 64  # SimulationJob.request_id holds this many
_TOKEN = re.compile(rf"[A-Za-z0-9._:/+=-]{{1,{MAX_LENGTH}}}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | bytes | None) -> str | None:
    """The caller's id if it is a plain token of at most 64 characters, else ``None``
    (a new one is made): a log line never carries what a client wrote unchecked."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if value and _TOKEN.fullmatch(value.strip()):
        return value.strip()
    return None


def current_request_id() -> str:
    """The request id in context; ``""`` outside any request, task or event."""
    return str(get_contextvars().get("request_id", ""))


class OncePerOutage(logging.Filter):
    """Lets a kind of line through once per ``every`` seconds, with how many like it were
    held back: for clients that retry a lost server every few milliseconds and say so each
    time (librdkafka, Celery's broker connection). Lines are alike when they differ only
    in numbers (durations, counts)."""

    def __init__(self, every: float = 60.0):
        super().__init__()
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = re.sub(r"\d+", "#", f"{record.name}:{record.getMessage()}")
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(kind, (-math.inf, 0))
            if now - last < self.every:
                self._seen[kind] = (last, held + 1)
                return False
            self._seen[kind] = (now, 0)
        if held:
            record.msg, record.args = f"{record.getMessage()} ({held} more like it in the last {self.every:g} s)", ()
        return True
