"""This process: who it is, and the objects it owns alone.

Clients that own sockets or threads (librdkafka, redis-py and urllib3 pools, the
batch writer's thread) must not be shared across ``fork()``: a prefork child gets
its own, created on first use.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def worker_id() -> str:
    """``host:pid`` of the current process (a prefork child has its own): who holds a job."""
    return f"{socket.gethostname()}:{os.getpid()}"


def freeze_heap() -> int:
    """Collect once, then leave every object alive now to reference counting alone
    (``gc.freeze``): for a long-running process once its modules and kernels are
    loaded. A full collection then walks only what the process made since, not the
    150,000–220,000 objects of Django, numpy and numba (≈ 90 ms each, ≈ 6% of a worker's
    CPU over a run of small jobs), and a prefork child forked from a frozen parent does
    not write to the pages it shares with it when it collects. Frozen objects that
    become garbage are still freed, unless they are in a reference cycle. Returns how
    many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> int:
    """The CPUs this process may really use: its affinity (``taskset``, a cpuset), and no
    more than its cgroup's CPU quota (a container's CPU limit), at least 1.
    ``os.cpu_count()`` is the host's: in a 2-CPU pod on a 64-core node it says 64, and
    64 numba threads would spend the quota being throttled."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, int(quota))  # 1.5 CPUs: one thread, not two throttled ones
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root: str, proc_cgroup: str) -> float | None:
    """CPUs' worth of time the process's cgroup may use (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``); ``None`` without a limit."""
    root = Path(cgroup_root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and (root / "cgroup.controllers").exists():  # v2, mounted at the root
            for directory in (root / path.lstrip("/"), root):  # in a container: its own cgroup is the root
                text = _read(directory / "cpu.max")
                if text is not None:
                    quota, _, period = text.partition(" ")
                    return None if quota == "max" else int(quota) / int(period or 100_000)
        elif "cpu" in controllers.split(","):
            mount = root / controllers
            for directory in (mount / path.lstrip("/"), mount):
                quota_text, period_text = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
                if quota_text is not None and period_text is not None:
                    return None if int(quota_text) < 0 else int(quota_text) / int(period_text)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


class PerProcess(Generic[T]):
    """One object per OS process, created on first use.

    With ``key``, the object is also built anew when the key changes (settings that
    tests point elsewhere, say). Without a factory, the process ``set``s its object.
    """

    def __init__(self, factory: Callable[[], T] | None = None, key: Callable[[], Hashable] | None = None):
        self._factory = factory
        self._key = key or (lambda: None)
        self._value: T | None = None
        self._owner: tuple[int, Hashable] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        owner = (os.getpid(), self._key())
        with self._lock:
            if self._value is None or self._owner != owner:
                if self._factory is None:
                    raise LookupError("no object was set in this process")
                self._value = self._factory()
                self._owner = owner
            return self._value

    def existing(self) -> T | None:
        """The object of this process, if it was created here; never creates one."""
        with self._lock:
            if self._owner is not None and self._owner[0] == os.getpid():
                return self._value
            return None

    def set(self, value: T) -> T:
        """Make ``value`` this process's object."""
        with self._lock:
            self._value, self._owner = value, (os.getpid(), self._key())
            return value

    def reset(self) -> None:
        with self._lock:
            self._value = None
            self._owner = None
