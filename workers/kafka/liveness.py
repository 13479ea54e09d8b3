"""The bridge's liveness: each of its loops (the consumer, the outbox relay) touches a
file every time round, and the probe (``python -m workers.kafka.liveness``) fails when
one has not been touched for ``BRIDGE_LIVENESS_MAX_AGE`` seconds: a loop that hangs (a
deadlock, a call that never returns) is restarted, while one that waits for Kafka to
come back goes round and stays alive. A file, not an HTTP endpoint: the metrics server
runs on its own thread and answers however the loops are doing.

The probe reads only the environment, not Django's settings: it runs every 30 s and
starts in ≈ 50 ms.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

DEFAULT_DIR = "/tmp/montecarlo-bridge"
DEFAULT_MAX_AGE = 120.0
LOOPS = ("consumer", "relay")


def liveness_dir() -> str:
    return os.environ.get("BRIDGE_LIVENESS_DIR", DEFAULT_DIR)


class Liveness:
    """Touches ``<dir>/<loop>`` at most once a second."""

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory or liveness_dir())
        self.directory.mkdir(parents=True, exist_ok=True)
        self._last: dict[str, float] = {}

    def beat(self, loop: str) -> None:
        now = time.monotonic()
        if now - self._last.get(loop, -1.0) < 1.0:
            return
        self._last[loop] = now
        (self.directory / loop).touch()

    def forget(self) -> None:
        """A clean stop: the files go, so a probe during the shutdown grace tells no lie."""
        for loop in LOOPS:
            (self.directory / loop).unlink(missing_ok=True)


def check(directory: str | os.PathLike[str], *, max_age: float, loops: tuple[str, ...] = LOOPS) -> list[str]:
    """What is wrong, per loop that should be running; empty when all are alive."""
    problems = []
    now = time.time()
    for loop in loops:
        path = Path(directory) / loop
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            problems.append(f"{loop}: no heartbeat yet at {path}")
            continue
        if age > max_age:
            problems.append(f"{loop}: last went round {age:.0f} s ago (more than {max_age:.0f} s)")
    return problems


def main() -> int:
    directory = liveness_dir()
    max_age = float(os.environ.get("BRIDGE_LIVENESS_MAX_AGE", DEFAULT_MAX_AGE))
    loops = tuple(sys.argv[1:]) or LOOPS
    problems = check(directory, max_age=max_age, loops=loops)
    for problem in problems:
        sys.stderr.write(f"kafka bridge not alive: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
