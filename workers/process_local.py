"""One object per OS process, created on first use.

Clients that own sockets or threads (librdkafka, redis-py pools, the batch writer's
thread) must not be shared across ``fork()``: a prefork child gets its own.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._value: Optional[T] = None
        self._pid: Optional[int] = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value = self._factory()
                self._pid = os.getpid()
            return self._value

    def existing(self) -> Optional[T]:
        """The object of this process, if it was created here; never creates one."""
        with self._lock:
            return self._value if self._pid == os.getpid() else None

    def reset(self) -> None:
        with self._lock:
            self._value = None
