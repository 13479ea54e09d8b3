"""Read queries used by the API and the admin."""

from __future__ import annotations

import uuid
from typing import Union

from django.db.models import QuerySet

from .errors import JobNotFound
from .models import SimulationJob


def job_get(*, job_id: Union[str, uuid.UUID]) -> SimulationJob:
    try:
        return SimulationJob.objects.get(pk=uuid.UUID(str(job_id)))
    except (SimulationJob.DoesNotExist, ValueError):
        raise JobNotFound(f"no simulation job {job_id}") from None


def job_list() -> QuerySet[SimulationJob]:
    """All jobs, newest first, without the heavy JSON columns."""
    return SimulationJob.objects.defer("input_data").order_by("-created_at", "-id")
