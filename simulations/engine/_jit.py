"""One place that decides whether and how kernels are compiled.

``MONTECARLO_DISABLE_JIT=1`` turns every kernel into plain Python (with ``prange``
as ``range``), which makes them debuggable and lets coverage see inside them.

Wide vectors: LLVM's tuning for recent Intel server CPUs prefers 256-bit vectors
even where 512-bit ones exist (against clock drops in mixed code). The lane kernel
is all vector arithmetic and measured 15-25% faster with 512-bit vectors
(``benchmarks/engine.py``), so on an AVX-512 host the engine asks numba for them
through its documented ``NUMBA_CPU_FEATURES`` setting: the host's own features
plus ``-prefer-256-bit``. It has to happen before numba compiles or loads its
first function; a process that set ``NUMBA_CPU_FEATURES`` itself, chose a portable
target with ``NUMBA_CPU_NAME`` (as the image does), or ``MONTECARLO_WIDE_VECTORS=0``,
keeps its choice. Results do not depend on it:
vectorising never reorders a lane's arithmetic (tests compare lanes with the
one-path loop bit for bit), and numba's cache keys code on the features.

OpenMP spin: numba's "omp" threading layer is GNU libgomp, whose threads spin for
300,000 rounds (milliseconds here) after every parallel region before they sleep.
That held the second core through the summary that follows each kernel, so sorting
there on a second thread gained nothing. ``GOMP_SPINCOUNT=10000`` lets them sleep
after well under a millisecond: a run of 10,000 paths x 1,000 then took ~1 ms less
of ~10 (an A/B in one process), and the kernels were no slower. libgomp reads it
when numba first loads it, after this module; a preset ``GOMP_SPINCOUNT`` or
``OMP_WAIT_POLICY`` wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

JIT_DISABLED = os.environ.get("MONTECARLO_DISABLE_JIT", "") not in ("", "0", "false")


def _prefer_wide_vectors() -> None:
    if os.environ.get("MONTECARLO_WIDE_VECTORS", "1") in ("", "0", "false") or (
        "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ
    ):
        return
    from numba.core import codegen, config

    features = codegen.get_host_cpu_features()  # what numba would use, as a string
    if "+avx512f" not in features.split(","):
        return
    os.environ["NUMBA_CPU_FEATURES"] = config.CPU_FEATURES = features + ",-prefer-256-bit"


def _shorter_openmp_spin() -> None:
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "10000"


def njit(**options: Any) -> Callable[[F], F]:
    """``numba.njit(**options)``, or the function itself with the JIT off; typed so that
    mypy keeps each kernel's own signature."""
    if JIT_DISABLED:
        return lambda func: func
    import numba

    return cast("Callable[[F], F]", numba.njit(**options))


prange: Any
if JIT_DISABLED:
    prange = range
else:
    _prefer_wide_vectors()
    _shorter_openmp_spin()
    import numba

    prange = numba.prange
