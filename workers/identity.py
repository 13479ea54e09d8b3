"""Who this process is, for job ownership and heartbeats."""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    """``host:pid`` of the current process (a prefork child has its own)."""
    return f"{socket.gethostname()}:{os.getpid()}"
