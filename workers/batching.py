"""The batch writer: finished jobs are written N at a time, not one round trip each.

Task threads hand their job's end state to ``BatchWriter.write`` and wait; a writer
thread flushes when ``BATCH_MAX_ITEMS`` changes are waiting, when every task the process
runs now is waiting (no other change can come sooner), or when the oldest has waited
``BATCH_MAX_WAIT_MS``, whichever comes first, and on shutdown. A flush is one
transaction (``services.finish_jobs``: the jobs and their outbox rows). If the
database is unavailable, every waiting task gets the error and its message is
rejected back to the queue (not acknowledged), so the job, still pending, is
simulated and written again: no result is lost, and none is half-written. If one
change cannot be stored at all, the batch is written one change at a time and that
job fails with the reason, instead of coming back forever.

Batches form across concurrent tasks, so a worker gains from this when it runs many
tasks at once: the thread pool (``-P threads -c 16``, with ``ENGINE_PARALLEL=false``
so each thread runs kernels on its own). A prefork child runs one task at a time: its
task is the only one running, so its changes (one job's, or a bulk message's) are
written at once. Waiting the full window there held every child 20 ms a message: a
message per job ran at 54 jobs/s on two children, 79 without the wait (p50 latency
5.6 s → 0.6 s, ``benchmarks/end_to_end.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from simulations import metrics, services
from simulations.models import JobStatus
from simulations.process import PerProcess
from simulations.services import JobChange
from workers import heartbeat

logger = logging.getLogger(__name__)


class BatchWriteFailed(Exception):
    """The flush that carried this change failed; nothing of it was written."""


@dataclass
class _Pending:
    change: JobChange
    queued_at: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    caller: int = field(default_factory=threading.get_ident)  # the task thread waiting for it
    written: bool = False
    error: BaseException | None = None


class BatchWriter:
    def __init__(
        self,
        *,
        max_items: int,
        max_wait_ms: int,
        flush: Callable[[list[JobChange]], set] = services.finish_jobs,
        tasks_running: Callable[[], int | None] = lambda: None,
    ):
        """``tasks_running``: how many tasks the process runs now, each a possible
        writer (None: not known, so a batch waits out ``max_wait_ms``)."""
        self.max_items = max_items
        self.max_wait = max_wait_ms / 1000.0
        self._flush_fn = flush
        self._tasks_running = tasks_running
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    def write(self, change: JobChange, timeout: float = 120.0) -> bool:
        """Queue ``change`` and wait for its flush; True if written, False if its guard failed."""
        return change.job_id in self.write_many([change], timeout)

    def write_many(self, changes: list[JobChange], timeout: float = 120.0) -> set:
        """Queue several changes (a batch task's jobs) and wait for their flushes; the
        ids written. If any flush failed, raise: the task's message goes back to the
        queue, and what was written already is a duplicate's no-op next time."""
        items = [_Pending(change) for change in changes]
        with self._cond:
            if self._stopping:
                raise BatchWriteFailed("batch writer is shutting down")
            self._queue.extend(items)
            self._cond.notify()
        deadline = time.monotonic() + timeout
        for item in items:
            if not item.done.wait(max(0.0, deadline - time.monotonic())):
                raise BatchWriteFailed(f"no flush within {timeout}s")
            if item.error is not None:
                raise BatchWriteFailed(str(item.error)) from item.error
        return {item.change.job_id for item in items if item.written}

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is waiting and stop (worker shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue and self._stopping:
                    break
                # wait for a full batch, every running task's changes, or the window's end
                while len(self._queue) < self.max_items and not self._stopping and not self._all_tasks_waiting():
                    remaining = self._queue[0].queued_at + self.max_wait - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch, self._queue = self._queue[: self.max_items], self._queue[self.max_items :]
            self._flush(batch)
        connection.close()

    def _all_tasks_waiting(self) -> bool:
        """Every task running in this process waits for this writer (under the lock)."""
        running = self._tasks_running()
        return running is not None and len({p.caller for p in self._queue}) >= running

    def _flush(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            close_old_connections()
            written = self._flush_fn([p.change for p in batch])
        except (OperationalError, InterfaceError) as exc:  # the database is away: all go back
            self._fail(batch, exc)
            return
        except Exception as exc:  # something in the batch is unwritable: find it, keep the rest
            logger.warning("batch of %d not written (%s); writing one by one", len(batch), exc)
            metrics.BATCH_FLUSHES.labels(result="split").inc()
            connection.close()
            for p in batch:
                self._flush_alone(p)
            return
        metrics.BATCH_FLUSHES.labels(result="ok").inc()
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.BATCH_FLUSH_SECONDS.observe(time.perf_counter() - started)
        for p in batch:
            p.written = p.change.job_id in written
            p.done.set()

    def _flush_alone(self, p: _Pending) -> None:
        """One change in its own transaction; if its result cannot be stored, the job
        fails with that reason (a redelivery would only fail the same way, forever)."""
        try:
            p.written = p.change.job_id in self._flush_fn([p.change])
            p.done.set()
            return
        except (OperationalError, InterfaceError) as exc:
            self._fail([p], exc)
            return
        except Exception as exc:
            reason = f"result could not be stored: {exc.__class__.__name__}: {exc}"[:4000]
            logger.error("job %s: %s", p.change.job_id, reason)
            connection.close()
        p.change = replace(
            p.change,
            status=JobStatus.FAILED,
            result=None,
            result_blob=None,
            summary=None,
            summary_json=None,
            error=reason,
        )
        try:
            p.written = p.change.job_id in self._flush_fn([p.change])
            p.done.set()
        except Exception as exc:
            self._fail([p], exc)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        """Nothing of these was written: every waiting task is told (and requeues)."""
        logger.warning("%d job changes not written: %s", len(batch), exc)
        metrics.BATCH_FLUSHES.labels(result="failed").inc()
        connection.close()
        for p in batch:
            p.error = exc
            p.done.set()


_writer: PerProcess[BatchWriter] = PerProcess(
    lambda: BatchWriter(
        max_items=settings.BATCH_MAX_ITEMS,
        max_wait_ms=settings.BATCH_MAX_WAIT_MS,
        tasks_running=heartbeat.tasks_running,
    )
)


def process_writer() -> BatchWriter:
    """The batch writer of this process, started on first use (after any fork)."""
    return _writer.get()


def stop_process_writer() -> None:
    writer = _writer.existing()
    if writer is not None:
        writer.stop()
