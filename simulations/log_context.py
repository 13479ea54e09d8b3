"""What every log line says about where it comes from: the request, job, task and worker
ids of the work in hand, kept in contextvars (each thread and each request its own) and
added to every record by the log formatter (``montecarlo.logging``).

A request id is taken from the caller (``X-Request-ID``, a Kafka ``request-id`` header)
when it is a plain token, or made; it is stored with each job it creates and travels in
task headers and on the job's Kafka events, so one id finds a job's every line.
"""

from __future__ import annotations

import re
import uuid

from structlog.contextvars import bind_contextvars, bound_contextvars, get_contextvars, unbind_contextvars

__all__ = [
    "HTTP_HEADER",
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
MAX_LENGTH = 64  # the job's column
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
