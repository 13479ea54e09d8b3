"""Celery worker signals: set up each prefork child after the fork, keep its
heartbeat in step with the tasks it runs, and its database connections across them;
carry request ids in task headers and bind each task's ids for its log lines."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import (
    before_task_publish,
    celeryd_init,
    task_postrun,
    task_prerun,
    task_received,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from django.conf import settings
from django.db import close_old_connections

from simulations import log_context, metrics
from simulations.process import freeze_heap, usable_cpus, worker_id
from workers import heartbeat, held, last_success
from workers.batching import stop_process_writer
from workers.queues import CeleryQueue, queue_lengths

logger = logging.getLogger(__name__)
_held: held.HeldJobs | None = None  # the main process's publisher of the messages it holds
_node_name = "worker"
_queues = CeleryQueue.SIMULATIONS.value  # Celery's default queue, when -Q names none


@celeryd_init.connect
def prepare_main_process(sender: str | None = None, options: dict[str, Any] | None = None, **_: Any) -> None:
    """Runs in the parent before forking: children inherit the node name and the queues
    (the label that tells simulation workers from the maintenance worker). Starts the
    worker's metrics exporter when WORKER_METRICS_PORT is set."""
    global _node_name, _queues
    _node_name = sender or _node_name
    queues = (options or {}).get("queues")
    if queues:
        names = queues.split(",") if isinstance(queues, str) else list(queues)
        _queues = ",".join(sorted(q.strip() for q in names if q.strip()))
    port = int(os.environ.get("WORKER_METRICS_PORT", "0") or 0)
    if port:
        metrics.serve_metrics(
            port,
            metrics.queue_lengths(queue_lengths),
            metrics.last_successes(last_success.read),
            metrics.WorkerHealth(_node_name, _queues, lambda: heartbeat.node_health(_node_name)),
        )


@worker_init.connect
def publish_held_jobs(**_: Any) -> None:
    """The main process (any pool) publishes the jobs of the messages it holds, so a
    dead main process's jobs are re-sent by the sweep within a minute (workers.held)."""
    global _held
    _held = held.HeldJobs(worker_id(), interval=settings.WORKER_HEARTBEAT_INTERVAL).start()


@task_received.connect
def publish_arriving_job(request: Any = None, **_: Any) -> None:
    """A message's jobs are published as held before its task can start (workers.held)."""
    if _held is not None and request is not None:
        _held.publish(request)


@worker_init.connect
def prepare_threaded_worker(sender: Any = None, **_: Any) -> None:
    """Thread and solo pools run tasks in the main process, which never forks: set it
    up here. (Prefork children are set up after their fork, below.)"""
    global _node_name
    if sender is None or "prefork" in str(getattr(sender, "pool_cls", "prefork")).lower():
        return
    from simulations.engine import warm_up

    _node_name = getattr(sender, "hostname", None) or _node_name
    heartbeat.start_process_heartbeat(_node_name)
    warm_up()
    metrics.WORKER_PROCESSES.labels(queues=_queues).set(1)
    logger.info("worker %s (%s pool) ready", os.getpid(), sender.pool_cls)


@worker_init.connect
def freeze_main_heap(**_: Any) -> None:
    """Connected after the set-ups above, so it runs last, once the main process has
    loaded its modules (and, in a thread pool, the kernels): its heap leaves the
    collector's walks, and prefork children fork from it frozen
    (simulations.process.freeze_heap)."""
    logger.info("worker %s: %d objects frozen", os.getpid(), freeze_heap())


@worker_process_init.connect
def prepare_child_process(**_: Any) -> None:
    """Start the heartbeat, size numba's thread pool, load the kernels, freeze the heap.

    Threads x worker processes must not exceed the cores: with N prefork children
    on C usable CPUs (affinity and cgroup quota, not the host's count) each child runs
    kernels on max(1, C // N) threads. Kernels are only
    ever launched from the child's main thread (the heartbeat thread never calls
    them), so numba's default 'workqueue' layer is safe; and since this runs after
    the fork, no thread pool ever crosses one.
    """
    import numba

    from simulations.engine import warm_up

    heartbeat.start_process_heartbeat(_node_name)
    cores = usable_cpus()
    concurrency = int(os.environ.get("WORKER_CONCURRENCY", "0") or 0) or cores
    threads = max(1, min(numba.config.NUMBA_NUM_THREADS, cores // concurrency))
    numba.set_num_threads(threads)
    warm_up()
    frozen = freeze_heap()  # what the kernels' loading added to the parent's frozen heap
    metrics.WORKER_PROCESSES.labels(queues=_queues).set(1)  # summed over the live children by the exporter
    logger.info(
        "worker process %s ready: numba threads=%s layer=%s, %d objects frozen",
        os.getpid(),
        threads,
        numba.config.THREADING_LAYER,
        frozen,
    )


@worker_process_shutdown.connect
def stop_heartbeat(pid: int | None = None, **_: Any) -> None:
    stop_process_writer()  # flush finished jobs before the process goes
    metrics.forget_process(pid or os.getpid())
    beat = heartbeat.process_heartbeat()
    if beat is not None:
        beat.stop()


@before_task_publish.connect
def send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task carries the id of the request that sent it (the API's, the bridge's, a
    task's own), so the worker's lines for it carry that id too."""
    request_id = log_context.current_request_id()
    if headers is not None and request_id:
        headers.setdefault(log_context.TASK_HEADER, request_id)


@task_prerun.connect
def bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Every line logged while a task runs: its id, its request's (from the header, or
    a new one for a task beat sent), the worker's. Jobs add their own id as they run."""
    sent = log_context.clean_request_id(task.request.get(log_context.TASK_HEADER)) if task is not None else None
    log_context.bind_contextvars(
        task_id=task_id, request_id=sent or log_context.new_request_id(), worker_id=worker_id()
    )


@task_postrun.connect
def unbind_task_context(**_: Any) -> None:
    log_context.unbind_contextvars("task_id", "request_id", "job_id")


@task_prerun.connect
def mark_processing(task_id: str | None = None, **_: Any) -> None:
    beat = heartbeat.process_heartbeat()
    if beat is not None and task_id:
        beat.task_started(task_id)


@task_postrun.connect
def mark_idle(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    beat = heartbeat.process_heartbeat()
    if beat is not None:
        beat.task_finished(task_id, failed=state not in ("SUCCESS", None))


@task_prerun.connect
@task_postrun.connect
def reuse_database_connections(**_: Any) -> None:
    """Keep this thread's database connection across tasks, as Django keeps one across
    requests: closed only past CONN_MAX_AGE or after an error that broke it. (Celery's
    fixup would close it around every task; CELERY_DB_REUSE_MAX stops that.)"""
    close_old_connections()


@worker_shutdown.connect
def flush_on_shutdown(**_: Any) -> None:
    """The main process stops publishing what it holds (the broker takes the messages
    back at a warm shutdown). Thread-pool workers have no child processes: flush and say
    goodbye here too."""
    if _held is not None:
        _held.stop()
    stop_process_writer()
    beat = heartbeat.process_heartbeat()
    if beat is not None:
        beat.stop()
