"""Prometheus metrics, all in one module: ``montecarlo_`` prefix, low-cardinality labels."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import version

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from simulations import __version__

logger = logging.getLogger(__name__)

BUILD_INFO = Gauge(
    "montecarlo_build_info",
    "Always 1; which version of the service, Python and numba this process runs",
    ["version", "python", "numba"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(version=__version__, python=platform.python_version(), numba=version("numba")).set(1)
HTTP_REQUESTS = Counter(
    "montecarlo_http_requests_total",
    "HTTP requests answered, by route (the URL's name), method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "montecarlo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS_CREATED = Counter("montecarlo_jobs_created_total", "Simulation jobs created", ["trigger"])
ENQUEUE_FAILURES = Counter(
    "montecarlo_enqueue_failures_total", "Created jobs the broker refused, left pending for the beat's sweep"
)
JOBS_FINISHED = Counter("montecarlo_jobs_finished_total", "Simulation jobs finished", ["status"])
WORKER_PROCESSES = Gauge(
    "montecarlo_worker_processes",
    "Worker processes ready to run tasks (prefork children, or a thread pool's main process), by queues consumed",
    ["queues"],
    multiprocess_mode="livesum",
)
JOB_DURATION = Histogram(
    "montecarlo_job_duration_seconds",
    "Time from claim to result",
    ["method"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
JOB_QUEUE_WAIT = Histogram(
    "montecarlo_job_queue_wait_seconds",
    "Time from a job's creation to the start of its run (the attempt that ran it)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
BRIDGE_LAST_POLL = Gauge(
    "montecarlo_bridge_last_poll_timestamp_seconds",
    "When the Kafka bridge's consumer last returned from a poll (Unix time)",
    multiprocess_mode="max",
)
PATHS_SIMULATED = Counter("montecarlo_paths_simulated_total", "Monte Carlo paths simulated")
JOBS_REQUEUED = Counter("montecarlo_jobs_requeued_total", "Running jobs requeued because their worker died")
JOBS_RESENT = Counter(
    "montecarlo_jobs_resent_total", "Pending jobs sent again because the worker holding their message died"
)
STALE_HEARTBEATS = Counter("montecarlo_stale_heartbeats_total", "Running jobs found without a live worker heartbeat")

KAFKA_EVENTS = Counter("montecarlo_kafka_events_total", "assessment.completed messages handled", ["result"])
KAFKA_CONSUMER_LAG = Gauge(
    "montecarlo_kafka_consumer_lag",
    "Messages behind the partition end",
    ["topic", "partition"],
    multiprocess_mode="max",
)
KAFKA_ERRORS = Counter(
    "montecarlo_kafka_errors_total", "Kafka consume/relay rounds that failed and were retried", ["stage"]
)
OUTBOX_PUBLISHED = Counter("montecarlo_outbox_published_total", "Outbox events acknowledged by Kafka", ["topic"])
OUTBOX_REFUSED = Counter(
    "montecarlo_outbox_refused_total",
    "Outbox events Kafka refused for what they are (too large, say): put off and retried",
    ["topic"],
)
OUTBOX_PENDING = Gauge(
    "montecarlo_outbox_pending", "Unsent outbox rows seen by the relay (capped by its batch)", multiprocess_mode="max"
)
BREACH_DRIFT_ACCOUNTS = Gauge(
    "montecarlo_book_breach_drift_accounts",
    "Accounts whose P(breach) rose by more than BOOK_DRIFT_THRESHOLD since their last daily run (latest report)",
    multiprocess_mode="mostrecent",
)
BATCH_FLUSHES = Counter("montecarlo_batch_flushes_total", "Batch writer flushes", ["result"])
BATCH_SIZE = Histogram(
    "montecarlo_batch_size", "Job changes per batch flush", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
BATCH_FLUSH_SECONDS = Histogram(
    "montecarlo_batch_flush_seconds",
    "Time to write one batch (one transaction)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class ReadAtScrape(Collector):
    """A gauge by one label whose values live elsewhere (the broker, the keys Redis) and
    are read at each scrape by ``read``. Every worker's exporter serves them, so alerts
    take the max; a store that cannot be read gives no samples and a warning, never a
    failed scrape."""

    def __init__(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]):
        self.name, self.documentation, self.label, self.read = name, documentation, label, read

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=[self.label])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()  # so registering it reads nothing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            values = self.read()
        except Exception as exc:  # the store is away: the other metrics still answer
            logger.warning("%s not read: %s", self.name, exc)
            values = {}
        for key, value in sorted(values.items()):
            family.add_metric([key], value)
        yield family


def queue_lengths(read: Callable[[], Mapping[str, float]]) -> ReadAtScrape:
    return ReadAtScrape("montecarlo_queue_length", "Messages waiting in a Celery queue on the broker", "queue", read)


def last_successes(read: Callable[[], Mapping[str, float]]) -> ReadAtScrape:
    """Kept in Redis, not in a process: a restarted worker does not forget them."""
    return ReadAtScrape(
        "montecarlo_task_last_success_timestamp_seconds",
        "When a scheduled task (sweep, daily_run) last finished without error (Unix time)",
        "task",
        read,
    )


class WorkerHealth(Collector):
    """One worker's health from its processes' heartbeats, served by that worker's main
    process (never by each child, which would count it once per child): up, processes
    alive and busy, tasks succeeded and failed, uptime. Labels: the worker's name and
    the queues it consumes. A worker that dies takes its exporter with it, so its
    series go stale; a worker whose processes stopped beating reports up 0."""

    def __init__(self, worker: str, queues: str, read: Callable[[], Mapping[str, float]]):
        self.worker, self.queues, self.read = worker, queues, read

    def _families(self) -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        labels = ["worker", "queues"]
        return {
            "up": GaugeMetricFamily("montecarlo_worker_up", "1 while a process of the worker beats", labels=labels),
            "processes": GaugeMetricFamily(
                "montecarlo_worker_live_processes", "The worker's processes with a live heartbeat", labels=labels
            ),
            "busy": GaugeMetricFamily(
                "montecarlo_worker_busy_processes", "The worker's processes running a task now", labels=labels
            ),
            "uptime_seconds": GaugeMetricFamily(
                "montecarlo_worker_uptime_seconds", "Age of the worker's oldest live process", labels=labels
            ),
            "tasks": CounterMetricFamily(
                "montecarlo_worker_tasks", "Tasks the worker's live processes finished", labels=[*labels, "result"]
            ),
        }

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        families = self._families()
        try:
            health = self.read()
        except Exception as exc:  # the keys Redis is away: say nothing rather than "down"
            logger.warning("worker health not read: %s", exc)
            return
        ids = [self.worker, self.queues]
        families["up"].add_metric(ids, 1 if health else 0)
        if health:
            for name in ("processes", "busy", "uptime_seconds"):
                families[name].add_metric(ids, health[name])
            for result in ("succeeded", "failed"):
                families["tasks"].add_metric([*ids, result], health[result])
        yield from families.values()


def registry() -> CollectorRegistry:
    """This process's metrics, or every process's when PROMETHEUS_MULTIPROC_DIR is set
    (gunicorn workers, prefork children): one exporter reads them all."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return DEFAULT_REGISTRY


def serve_metrics(port: int, *collectors: Collector) -> None:
    """One HTTP exporter on its own port in a main process (gunicorn's master, the
    worker's) for all its children; children that each started one would expose 1/N of
    the numbers (PostHog/posthog#56109). Not on the API's port: the proxy in front of
    it never passes metrics to the outside."""
    served = registry()
    for collector in collectors:
        served.register(collector)
    start_http_server(port, registry=served)


def forget_process(pid: int) -> None:
    """A child exited: drop its live gauges from the shared directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
