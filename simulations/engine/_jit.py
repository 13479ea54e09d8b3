"""One place that decides whether kernels are compiled.

``MONTECARLO_DISABLE_JIT=1`` turns every kernel into plain Python (with ``prange``
as ``range``), which makes them debuggable and lets coverage see inside them.
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

JIT_DISABLED = os.environ.get("MONTECARLO_DISABLE_JIT", "") not in ("", "0", "false")

if JIT_DISABLED:

    def njit(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]

        def wrap(func: F) -> F:
            return func

        return wrap

    prange = range
else:
    from numba import njit, prange  # noqa: F401

__all__ = ["JIT_DISABLED", "njit", "prange"]
