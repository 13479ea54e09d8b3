"""Read queries used by the API and the admin."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import QuerySet
from django.utils import timezone

from .errors import JobNotFound
from .models import JobStatus, JobTrigger, SimulationJob


def job_get(*, job_id: str | uuid.UUID) -> SimulationJob:
    try:
        return SimulationJob.objects.get(pk=uuid.UUID(str(job_id)))
    except (SimulationJob.DoesNotExist, ValueError):
        raise JobNotFound(f"no simulation job {job_id}") from None


def job_list() -> QuerySet[SimulationJob]:
    """All jobs, newest first, without their input (the trade history, the largest
    column); the result stays, since each list item carries its summary."""
    return SimulationJob.objects.defer("input_data").order_by("-created_at", "-id")


def running_jobs_older_than(*, seconds: float) -> list[tuple[uuid.UUID, str]]:
    """(id, worker id) of jobs running for longer than ``seconds`` on a worker."""
    cutoff = timezone.now() - dt.timedelta(seconds=seconds)
    return list(
        SimulationJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=cutoff)
        .exclude(trigger=JobTrigger.CLI)
        .values_list("id", "worker_id")
    )
