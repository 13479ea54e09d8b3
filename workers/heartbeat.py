"""Worker heartbeats: proof that a worker process is alive, and what it is doing.

Each worker process keeps ``worker:heartbeat:{worker_id}`` (JSON, TTL), refreshed by
a daemon thread that never blocks a task, and is listed in the sorted set
``{hb}:workers`` (score = last beat) so live workers can be listed without SCAN
across cluster nodes. A running job whose worker's key has expired belongs to a
dead worker: the sweep (``sweep_stale_jobs``) puts it back on the queue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from simulations.keys_redis import keys_redis
from simulations.process import PerProcess
from simulations.process import worker_id as current_worker_id

logger = logging.getLogger(__name__)

KEY_PREFIX = "worker:heartbeat:"
INDEX_KEY = "{hb}:workers"


def heartbeat_key(worker_id: str) -> str:
    return f"{KEY_PREFIX}{worker_id}"


@dataclass
class WorkerState:
    worker_id: str
    worker_name: str
    started: float = field(default_factory=time.time)
    running: list[str] = field(default_factory=list)  # several at once in a thread pool
    tasks_processed: int = 0
    tasks_failed: int = 0

    @property
    def status(self) -> str:
        return "processing" if self.running else "idle"

    @property
    def current_task_id(self) -> str | None:
        return self.running[-1] if self.running else None

    def as_json(self, interval: float, ttl: int) -> str:
        now = time.time()
        return json.dumps(
            {
                "worker_id": self.worker_id,
                "worker_name": self.worker_name,
                "timestamp": now,
                "status": self.status,
                "tasks_processed": self.tasks_processed,
                "tasks_failed": self.tasks_failed,
                "uptime_seconds": round(now - self.started, 3),
                "current_task_id": self.current_task_id,
                "heartbeat_interval": interval,
                "heartbeat_ttl": ttl,
            }
        )


class Heartbeat:
    """The beating thread of one worker process."""

    def __init__(
        self, worker_name: str, *, interval: float | None = None, ttl: int | None = None, min_gap: float = 0.2
    ):
        self.state = WorkerState(worker_id=current_worker_id(), worker_name=worker_name)
        self.interval = interval if interval is not None else settings.WORKER_HEARTBEAT_INTERVAL
        self.ttl = ttl if ttl is not None else settings.WORKER_HEARTBEAT_TTL
        # A change of state (a task started or finished) is written at most this often:
        # small jobs start and finish hundreds of times a second, and a write per change
        # was ~10% of a worker's Python time (py-spy); the key may lag by this much.
        self.min_gap = min_gap
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()  # before the first task can be claimed
        self._thread.start()
        return self

    def task_started(self, task_id: str) -> None:
        with self._lock:
            self.state.running.append(task_id)
        self._wake.set()

    def tasks_running(self) -> int:
        with self._lock:
            return len(self.state.running)

    def task_finished(self, task_id: str | None = None, *, failed: bool) -> None:
        with self._lock:
            if task_id in self.state.running:
                self.state.running.remove(task_id)
            elif self.state.running:
                self.state.running.pop()
            self.state.tasks_processed += 1
            self.state.tasks_failed += int(failed)
        self._wake.set()

    def beat(self) -> bool:
        """Write the key and the index entry; False (logged) when Redis is unreachable."""
        with self._lock:
            payload = self.state.as_json(self.interval, self.ttl)
        try:
            r = keys_redis()
            r.set(heartbeat_key(self.state.worker_id), payload, ex=self.ttl)
            r.zadd(INDEX_KEY, {self.state.worker_id: time.time()})
            return True
        except Exception as exc:  # a heartbeat must never take the worker down
            logger.warning("heartbeat of %s not written: %s", self.state.worker_id, exc)
            return False

    def stop(self) -> None:
        """Graceful shutdown: stop beating and remove the key at once."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            r = keys_redis()
            r.delete(heartbeat_key(self.state.worker_id))
            r.zrem(INDEX_KEY, self.state.worker_id)
        except Exception as exc:
            logger.warning("heartbeat of %s not removed: %s", self.state.worker_id, exc)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            rest = self.min_gap - (time.monotonic() - last)
            if rest > 0:  # the changes of the rest of the gap go into the same write
                self._stopped.wait(rest)
            self._wake.clear()
            if not self._stopped.is_set():
                self.beat()
                last = time.monotonic()


def is_alive(worker_id: str) -> bool:
    """Is the worker process ``host:pid`` alive?

    On its own host (the same pod: one PID namespace) the process table answers at
    once, which lets a redelivered message recover its job without waiting for the
    key to expire. Elsewhere the heartbeat key answers; a Redis error counts as alive,
    so a job is never requeued because Redis, not the worker, is down.
    """
    if not worker_id:
        return False
    host, _, pid = worker_id.rpartition(":")
    if host == host_name() and pid.isdigit():
        return _pid_running(int(pid))
    try:
        return bool(keys_redis().exists(heartbeat_key(worker_id)))
    except Exception as exc:
        logger.warning("cannot read heartbeat of %s: %s", worker_id, exc)
        return True


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is not alive
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def live_workers(host: str | None = None) -> list[dict[str, Any]]:
    """Heartbeats of every live worker process (or only of those on ``host``), newest
    first; prunes index entries whose key expired."""
    r = keys_redis()
    ids = r.zrevrange(INDEX_KEY, 0, -1)
    if host is not None:  # only this host's keys are read, not the whole fleet's
        ids = [i for i in ids if i.startswith(f"{host}:")]
    if not ids:
        return []
    keys = [heartbeat_key(i) for i in ids]
    values = r.mget_nonatomic(keys) if hasattr(r, "mget_nonatomic") else r.mget(keys)
    live, dead = [], []
    for worker, value in zip(ids, values):
        if value is None:
            dead.append(worker)
        else:
            live.append(json.loads(value))
    if dead:
        r.zrem(INDEX_KEY, *dead)
    return live


def host_name() -> str:
    return socket.gethostname()


def own_heartbeats(max_age: float) -> list[dict[str, Any]]:
    """Fresh heartbeats of worker processes on this host (for the liveness probe)."""
    now = time.time()
    return [hb for hb in live_workers(host_name()) if now - hb["timestamp"] <= max_age]


def node_health(worker_name: str) -> dict[str, float]:
    """One worker (a ``celery -n`` name, all its processes, all on this host) from its
    live heartbeats: what its exporter reports (``metrics.WorkerHealth``). Empty when
    none is alive."""
    beats = [hb for hb in live_workers(host_name()) if hb["worker_name"] == worker_name]
    if not beats:
        return {}
    failed = sum(hb["tasks_failed"] for hb in beats)
    return {
        "processes": len(beats),
        "busy": sum(hb["status"] == "processing" for hb in beats),
        "succeeded": sum(hb["tasks_processed"] for hb in beats) - failed,
        "failed": failed,
        "uptime_seconds": max(hb["uptime_seconds"] for hb in beats),
    }


_process_heartbeat: PerProcess[Heartbeat] = PerProcess()


def process_heartbeat() -> Heartbeat | None:
    """The heartbeat of this process, if it is a worker process."""
    return _process_heartbeat.existing()


def tasks_running() -> int | None:
    """How many tasks this worker process runs now (None outside a worker process)."""
    beat = process_heartbeat()
    return None if beat is None else beat.tasks_running()


def start_process_heartbeat(worker_name: str) -> Heartbeat:
    return _process_heartbeat.set(Heartbeat(worker_name).start())
