"""Read queries used by the API and the admin."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from . import charts
from .engine import stats
from .errors import JobNotFound, ReportNotFound
from .models import ApiClient, BookReport, JobStatus, JobTrigger, SimulationJob


def visible_jobs(client: ApiClient | None) -> QuerySet[SimulationJob]:
    """The jobs ``client`` may see: its own, or every job for an operator (and for
    callers inside the service, ``None``)."""
    jobs = SimulationJob.objects.all()
    return jobs if client is None or client.sees_every_job else jobs.filter(client=client)


def job_get(*, job_id: str | uuid.UUID, client: ApiClient | None = None) -> SimulationJob:
    """One job; another client's job is as unknown as a job that does not exist."""
    try:
        return visible_jobs(client).get(pk=uuid.UUID(str(job_id)))
    except (SimulationJob.DoesNotExist, ValueError):
        raise JobNotFound(f"no simulation job {job_id}") from None


def job_list(
    *,
    client: ApiClient | None = None,
    assessment_id: str | None = None,
    funded_account_id: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[SimulationJob]:
    """The jobs ``client`` may see that match the filters given, newest first, without
    their input (the trade history, the largest column); the result stays, since each
    list item carries its summary."""
    lookups = {
        "assessment_id": assessment_id,
        "funded_account_id": funded_account_id,
        "status": status,
        "trigger": trigger,
        "created_at__gte": created_after,
        "created_at__lt": created_before,
    }
    jobs = visible_jobs(client).filter(**{k: v for k, v in lookups.items() if v is not None})
    return jobs.defer("input_data").order_by("-created_at", "-id")


def running_jobs_older_than(*, seconds: float) -> list[tuple[uuid.UUID, str]]:
    """(id, worker id) of jobs running for longer than ``seconds`` on a worker."""
    cutoff = timezone.now() - dt.timedelta(seconds=seconds)
    return list(
        SimulationJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=cutoff)
        .exclude(trigger=JobTrigger.CLI)
        .values_list("id", "worker_id")
    )


def job_chart(job: SimulationJob, *, chart: str, fmt: str, width: int, height: int) -> tuple[bytes, bool]:
    """A chart of the job's result, and whether it is final. A completed job's chart never
    changes, so it is drawn once per process and size (≈ 40–70 ms) and kept; a job without
    a result gets a placeholder that says why (pending, 40% done, failed)."""
    if job.status != JobStatus.COMPLETED or not job.result:
        return charts.placeholder(_why_no_chart(job), fmt=fmt, width=width, height=height), False
    key = f"chart:{job.pk}:{chart}:{fmt}:{width}x{height}"
    picture = cache.get(key)
    if picture is None:
        picture = charts.render(job.result, chart=chart, fmt=fmt, width=width, height=height)
        cache.set(key, picture, timeout=24 * 3600)
    return picture, True


def _why_no_chart(job: SimulationJob) -> str:
    if job.status == JobStatus.RUNNING and job.paths_total:
        return f"running: {job.paths_done / job.paths_total:.0%} of {job.paths_total:,} paths"
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        return f"{job.status}: no result yet"
    return f"{job.status}: no result" + (f"\n{job.error[:80]}" if job.error else "")


def latest_book_report() -> BookReport | None:
    return BookReport.objects.order_by("-run_date").first()


def book_report_get(run_date: dt.date) -> BookReport:
    try:
        return BookReport.objects.get(run_date=run_date)
    except BookReport.DoesNotExist:
        raise ReportNotFound(f"no book report for {run_date}") from None


def account_numbers(summary: dict[str, Any] | None) -> tuple[float, float, float] | None:
    """(P(breach), expected payout, its std) from a job's summary; None if it has none
    (a job finished before the summary carried P(fail))."""
    if not summary or "probabilityOfFail" not in summary:
        return None
    payout = summary.get("payout") or {}
    return (
        float(summary["probabilityOfFail"]),
        float(payout.get("expectedPaid") or 0.0),
        float(payout.get("paidStd") or 0.0),
    )


def account_risk(account_id: str) -> list[dict[str, object]]:
    """Each daily run of ``account_id``, oldest first: its P(breach) and expected payout
    with their intervals (the summary's numbers; the interval of the payout's mean is
    the normal one, std / sqrt(paths)). Failed runs are listed with their status only."""
    jobs = SimulationJob.objects.filter(funded_account_id=account_id, trigger=JobTrigger.SCHEDULE).order_by("run_date")
    rows: list[dict[str, object]] = []
    for run_date, status, summary, job_id in jobs.values_list("run_date", "status", "summary", "id"):
        row: dict[str, object] = {"run_date": run_date, "job_id": str(job_id), "status": status}
        numbers = account_numbers(summary) if status == JobStatus.COMPLETED else None
        if numbers is not None:
            p, paid, std = numbers
            paths = max(int(summary["paths"]), 1)
            half = stats.Z95 * std / math.sqrt(paths)
            row.update(
                probability_of_breach=p,
                breach_ci95=list(stats.wilson_interval(round(p * paths), paths)),
                expected_payout=paid,
                payout_ci95=[paid - half, paid + half],
            )
        rows.append(row)
    if not rows:
        raise JobNotFound(f"no daily run of funded account {account_id}")
    return rows
