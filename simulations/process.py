"""This process: who it is, and the objects it owns alone.

Clients that own sockets or threads (librdkafka, redis-py and urllib3 pools, the
batch writer's thread) must not be shared across ``fork()``: a prefork child gets
its own, created on first use.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


def worker_id() -> str:
    """``host:pid`` of the current process (a prefork child has its own): who holds a job."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
