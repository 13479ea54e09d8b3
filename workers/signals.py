"""Celery worker signals: set up each prefork child after the fork."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_init

logger = logging.getLogger(__name__)


@worker_process_init.connect
def prepare_child_process(**_: Any) -> None:
    """Size numba's thread pool and load the kernels before the first job arrives.

    Threads x worker processes must not exceed the cores: with N prefork children
    on C cores each child runs kernels on max(1, C // N) threads. This runs in the
    child, after fork, so no numba thread pool ever crosses a fork.
    """
    import numba

    from simulations.engine import warm_up

    concurrency = int(os.environ.get("WORKER_CONCURRENCY", "0") or 0) or (os.cpu_count() or 1)
    threads = max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // concurrency))
    numba.set_num_threads(threads)
    warm_up()
    logger.info("worker process %s ready: numba threads=%s", os.getpid(), threads)
