"""The web process's CPU for one API request, in process (Django's test client, real
PostgreSQL and Redis), and the parts written out by hand beside the ORM form they replace.

    deploy/bench.sh api_requests [--requests 1000]

Rows: a whole ``POST /simulations`` (50 trades, 1,000 paths; its job is committed and
its wake-up sent), first with the three parts below in their library forms (the
baseline), then as the service runs it; ``POST /simulations/batch`` of 100 such jobs and
of 1,000 (the most one takes), in the library forms (with the jobs' INSERT by
``bulk_create`` instead of ``insert_jobs``' COPY) and as run (CPU per job, the same jobs
per round), and both with only the INSERT by ``bulk_create`` beside the COPY; a refused
one (no valid body: authentication, the rate limit and a 400), ``GET /health`` (the
middleware alone); then the key lookup every request makes (the library's ORM query, the baseline,
and ``ClientKeyManager.get_from_key``), the work budget's lock and sum (the ORM's two
queries, the baseline, and the one simple query of ``budget.reserve``), each in its own
transaction as a submit runs it, and a job's config in snake_case (the library's
``underscoreize``, the baseline, and ``wire.snake_keys``, which a job passes through four
times). CPU is the process's own (``time.process_time``), the median of 5 rounds in
which the rows take turns; each round's jobs are deleted after it, so the client's queue
stays short.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from itertools import islice

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")
os.environ["API_RATE_LIMIT"] = "100000000/minute"  # one client sending as fast as it can
# the lines' cost is benchmarks/logs.py's: here only errors (the 400s log warnings)
os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ.setdefault("LOG_LEVELS", "django.request=ERROR")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from djangorestframework_camel_case.util import underscoreize  # noqa: E402
from rest_framework_api_key.models import APIKeyManager  # noqa: E402

from benchmarks.report import Report  # noqa: E402
from simulations.models import ApiClient, ClientKey, ClientKeyManager, JobStatus, SimulationJob  # noqa: E402
from simulations.services import access, budget, jobs  # noqa: E402
from simulations.services.dispatch import flush_dispatcher  # noqa: E402
from simulations.wire import snake_keys  # noqa: E402

TRADES = [{"pnl": round(40 * ((i * 7919) % 13 - 6), 2)} for i in range(50)]
# the end-to-end benchmark's config, as a caller spells it
CONFIG = {"paths": 1000, "horizon": 50, "seed": 1, "fanPoints": 20, "histogramBins": 20}
CONFIG["rules"] = {"profitTarget": 500, "maxDrawdown": 400}
BATCH = 100  # jobs a batch POST
BATCH_MAX = 1_000  # the most a batch POST takes (SIMULATION_BATCH_MAX_JOBS)
ROUNDS = 5
OUT = Report("api_requests", "The web process's CPU for one API request, in process")


def cpu_ms(action: Callable[[], object], n: int) -> float:
    """CPU ms per call of ``n`` calls in a row."""
    start = time.process_time()
    for _ in range(n):
        action()
    return (time.process_time() - start) * 1000 / n


def orm_lock_and_sum(client: ApiClient) -> int:
    """The work budget's lock and sum as the ORM's two queries (the form ``budget`` replaced)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [budget.BUDGET_LOCK, client.pk])
    unfinished = SimulationJob.objects.filter(client=client, status__in=[JobStatus.PENDING, JobStatus.RUNNING])
    return unfinished.aggregate(total=Sum("samples_planned"))["total"] or 0


def orm_insert(new: list[SimulationJob]) -> None:
    """New jobs inserted by the ORM's one INSERT (the form ``insert_jobs``' COPY replaced)."""
    SimulationJob.objects.bulk_create(new)


def with_orm_insert(action: Callable[[], object]) -> Callable[[], object]:
    """``action`` with the new jobs' INSERT in its ORM form (``bulk_create``)."""

    def run() -> object:
        insert, jobs.insert_jobs = jobs.insert_jobs, orm_insert
        try:
            return action()
        finally:
            jobs.insert_jobs = insert

    return run


def with_library_forms(action: Callable[[], object]) -> Callable[[], object]:
    """``action`` with the key lookup and the budget's lock and sum in their ORM forms,
    the config's names converted by the library's own walk, and new jobs inserted by
    ``bulk_create``."""

    def run() -> object:
        lookup, lock_and_sum, snake = ClientKeyManager.get_from_key, budget._lock_and_sum_queued, jobs.snake_keys
        ClientKeyManager.get_from_key, budget._lock_and_sum_queued = APIKeyManager.get_from_key, orm_lock_and_sum
        jobs.snake_keys = underscoreize
        try:
            return action()
        finally:
            ClientKeyManager.get_from_key, budget._lock_and_sum_queued, jobs.snake_keys = lookup, lock_and_sum, snake

    return with_orm_insert(run)


def in_transaction(action: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with transaction.atomic():
            return action()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests (or calls) per round")
    args = parser.parse_args()
    n = args.requests
    settings.ALLOWED_HOSTS = ["*"]
    name = f"bench-api-{uuid.uuid4().hex[:6]}"
    client = access.create_client(name=name, scopes=["submit", "read"], work_budget=10**18)
    secret = access.issue_key(client=client)[1]
    http = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    run = uuid.uuid4().hex[:6]
    sent = iter(range(10**9))

    def post() -> None:
        body = {"assessmentId": f"bapireq-{run}-{next(sent)}", "trades": TRADES, "config": CONFIG}
        response = http.post("/simulations", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 202, response.content

    def post_batch(size: int = BATCH) -> None:
        ids = islice(sent, size)
        given = [{"assessmentId": f"bapireq-{run}-{k}", "trades": TRADES, "config": CONFIG} for k in ids]
        response = http.post("/simulations/batch", data=json.dumps({"jobs": given}), content_type="application/json")
        assert response.status_code == 202, response.content

    def post_biggest_batch() -> None:
        post_batch(BATCH_MAX)

    def refused() -> None:
        assert http.post("/simulations", data="{}", content_type="application/json").status_code == 400

    def health() -> None:
        assert http.get("/health").status_code == 200

    library_lookup = ClientKey.objects.get_from_key(secret)
    assert APIKeyManager.get_from_key(ClientKey.objects, secret).pk == library_lookup.pk
    assert orm_lock_and_sum(client) == budget._lock_and_sum_queued(client)
    assert underscoreize(CONFIG) == snake_keys(CONFIG)
    orm_biggest = with_orm_insert(post_biggest_batch)
    # (label, action, its baseline's row, jobs a call: the row's CPU is per job)
    rows = [
        ("POST /simulations, library forms (baseline)", with_library_forms(post), None, 1),
        ("POST /simulations", post, 0, 1),
        (f"batch POST ({BATCH} jobs), library forms", with_library_forms(post_batch), None, BATCH),
        (f"batch POST ({BATCH} jobs)", post_batch, 2, BATCH),
        (f"batch POST ({BATCH_MAX:,} jobs), library forms", with_library_forms(post_biggest_batch), None, BATCH_MAX),
        (f"batch POST ({BATCH_MAX:,} jobs)", post_biggest_batch, 4, BATCH_MAX),
        (f"batch POST ({BATCH} jobs), INSERT by bulk_create", with_orm_insert(post_batch), None, BATCH),
        (f"batch POST ({BATCH} jobs), COPY", post_batch, 6, BATCH),
        (f"batch POST ({BATCH_MAX:,} jobs), INSERT by bulk_create", orm_biggest, None, BATCH_MAX),
        (f"batch POST ({BATCH_MAX:,} jobs), COPY", post_biggest_batch, 8, BATCH_MAX),
        ("POST /simulations, refused (400)", refused, None, 1),
        ("GET /health", health, None, 1),
        ("key lookup: the library's ORM query", lambda: APIKeyManager.get_from_key(ClientKey.objects, secret), None, 1),
        ("key lookup: one statement written out", lambda: ClientKey.objects.get_from_key(secret), 12, 1),
        ("budget lock + sum: the ORM's two queries", in_transaction(lambda: orm_lock_and_sum(client)), None, 1),
        ("budget lock + sum: one simple query", in_transaction(lambda: budget._lock_and_sum_queued(client)), 14, 1),
        ("config to snake_case: the library's walk", lambda: underscoreize(CONFIG), None, 1),
        ("config to snake_case: snake_keys", lambda: snake_keys(CONFIG), 16, 1),
    ]
    try:
        OUT.line(f"CPU ms per call (batch POSTs: per job) in the web process, median of {ROUNDS} rounds of {n:,}")
        OUT.line(f"{'call':52} | {'CPU ms':>7} | {'vs baseline':>11}")
        OUT.line("-" * 76)
        for _, action, _, per_call in rows:  # warm: connections, caches, the first compiles
            cpu_ms(action, max(1, min(50, n) // per_call))
        # the rows take turns, each round's jobs deleted after it: a client's queued jobs
        # make the budget's sum slower, which would favour whichever row ran first
        rounds: list[list[float]] = [[] for _ in rows]
        for _ in range(ROUNDS):
            for times, (_, action, _, per_call) in zip(rounds, rows, strict=True):
                times.append(cpu_ms(action, max(1, n // per_call)) / per_call)
            flush_dispatcher()
            SimulationJob.objects.filter(assessment_id__startswith=f"bapireq-{run}-").delete()
        measured = [statistics.median(times) for times in rounds]
        for (label, _, baseline_row, _), ms in zip(rows, measured, strict=True):
            ratio = f"{measured[baseline_row] / ms:10.1f}x" if baseline_row is not None else ""
            OUT.line(f"{label:52} | {ms:7.3f} | {ratio:>11}")
        OUT.save()
    finally:
        flush_dispatcher()
        SimulationJob.objects.filter(assessment_id__startswith=f"bapireq-{run}-").delete()
        ClientKey.objects.filter(client=client).delete()
        client.delete()


if __name__ == "__main__":
    main()
