"""Limits on what one job may ask the engine for."""

from __future__ import annotations

from .env import env

SIMULATION_MAX_PATHS = env.int("SIMULATION_MAX_PATHS", default=5_000_000)
SIMULATION_MAX_HORIZON = env.int("SIMULATION_MAX_HORIZON", default=100_000)
SIMULATION_MAX_SAMPLES = env.int("SIMULATION_MAX_SAMPLES", default=20_000_000_000)
SIMULATION_MAX_TRADES = env.int("SIMULATION_MAX_TRADES", default=1_000_000)
# Progress is written to the job row at most this often (seconds).
SIMULATION_PROGRESS_INTERVAL = env.float("SIMULATION_PROGRESS_INTERVAL", default=1.0)
# A job whose worker dies this many times (e.g. out of memory) fails instead of looping.
SIMULATION_MAX_ATTEMPTS = env.int("SIMULATION_MAX_ATTEMPTS", default=3)
# How often beat looks for running jobs whose worker's heartbeat expired (seconds).
STALE_JOB_SWEEP_INTERVAL = env.int("STALE_JOB_SWEEP_INTERVAL", default=30)
# Config of jobs nobody configured: daily funded-account runs and events without one.
DEFAULT_JOB_CONFIG = env.json("DEFAULT_JOB_CONFIG", default={"paths": 10_000})
# How often beat builds the book reports of the daily runs that changed (seconds), and
# the rise in an account's P(breach) since its last daily run that counts as drift.
BOOK_REPORT_INTERVAL = env.int("BOOK_REPORT_INTERVAL", default=300)
BOOK_DRIFT_THRESHOLD = env.float("BOOK_DRIFT_THRESHOLD", default=0.1)
# Daily funded-account run, in UTC ("HH:MM").
DAILY_FUNDED_RUN_TIME = env.str("DAILY_FUNDED_RUN_TIME", default="02:00")
# Jobs up to this many trade samples (paths x horizon) run without a claim and are
# finished by the batch writer; larger ones are claimed first (progress, recovery).
SMALL_JOB_MAX_SAMPLES = env.int("SMALL_JOB_MAX_SAMPLES", default=20_000_000)
# Kernels on numba's thread pool (prefork workers); false for thread-pool workers,
# whose own threads run simulations side by side.
ENGINE_PARALLEL = env.bool("ENGINE_PARALLEL", default=True)
# Bulk intake (the Kafka bridge's poll batch, POST /simulations/batch, the daily run) and
# the dispatcher send up to this many jobs per task message: rows loaded in one query,
# results written together. 64 against 16: a batch job's overhead 6.2 -> 5.3 ms, prefork
# (benchmarks/results/end_to_end.md); a message of small jobs stays under about a second.
SIMULATION_TASK_BATCH = env.int("SIMULATION_TASK_BATCH", default=64)
# The API's jobs are taken by workers woken for them, many per task (true), or pushed
# in messages of their ids (false): simulations.services.dispatch.
SIMULATION_API_PULL = env.bool("SIMULATION_API_PULL", default=True)
# Seconds a worker's take of pulled jobs holds them against other workers: far longer
# than a take of small jobs runs; a take whose worker died whole is free after it.
SIMULATION_RESERVATION_LEASE = env.int("SIMULATION_RESERVATION_LEASE", default=120)
# The API's new jobs travel together: pushed, they are sent this many ms after the first
# of them in one message; pulled, the wake-up for them goes this many ms after the
# commit that claimed it, and its take finds all that came meanwhile. 0 sends at once.
# 40 against 20 and 60: docs/performance.md ("Kept").
SIMULATION_DISPATCH_WINDOW_MS = env.int("SIMULATION_DISPATCH_WINDOW_MS", default=40)
# Most jobs one POST /simulations/batch may create.
SIMULATION_BATCH_MAX_JOBS = env.int("SIMULATION_BATCH_MAX_JOBS", default=1_000)
# Batch writer: flush at this many finished jobs or after this many ms, whichever first.
# A flush has a fixed cost and a small one per job (docs/performance.md): a larger cap
# pays the fixed part less often when a burst is waiting.
BATCH_MAX_ITEMS = env.int("BATCH_MAX_ITEMS", default=500)
BATCH_MAX_WAIT_MS = env.int("BATCH_MAX_WAIT_MS", default=20)
# Pending jobs older than this are enqueued again by the sweep (a lost enqueue).
PENDING_REQUEUE_AFTER = env.int("PENDING_REQUEUE_AFTER", default=600)
