"""Read queries used by the API and the admin."""

from __future__ import annotations

import datetime as dt
import uuid

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from . import charts
from .errors import JobNotFound
from .models import ApiClient, JobStatus, JobTrigger, SimulationJob


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
