"""Kafka topic names and the payloads of the events this service produces.

The one module that names topics; the bridge, the outbox relay and tests import it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone


class AnnouncedJob(Protocol):
    """What an event says about a job: a ``SimulationJob`` or a row the batch writer got back."""

    id: uuid.UUID
    assessment_id: str | None
    funded_account_id: str | None
    status: str
    error: str


ASSESSMENT_COMPLETED = "assessment.completed"
ASSESSMENT_COMPLETED_DLQ = "assessment.completed.dlq"
SIMULATION_STARTED = "montecarlo.simulation-started"
SIMULATION_COMPLETED = "montecarlo.simulation-completed"

OUTBOX_TOPICS = (SIMULATION_STARTED, SIMULATION_COMPLETED)  # what the outbox writes
ALL_TOPICS = (ASSESSMENT_COMPLETED, ASSESSMENT_COMPLETED_DLQ, *OUTBOX_TOPICS)


def physical_topic(name: str) -> str:
    """The topic on the broker: ``KAFKA_TOPIC_PREFIX`` + name (e.g. "staging.").

    Outbox rows store the logical name; only the Kafka edge applies the prefix.
    """
    return f"{settings.KAFKA_TOPIC_PREFIX}{name}"


def event_key(job: AnnouncedJob) -> str:
    """Partition key: the assessment (or account), so one trader's events stay in order."""
    return str(job.assessment_id or job.funded_account_id)


def started_payload(job: AnnouncedJob, at: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "jobId": str(job.id),
        "assessmentId": job.assessment_id,
        "fundedAccountId": job.funded_account_id,
        "timestamp": (at or timezone.now()).isoformat(),
    }


def completed_payload(
    job: AnnouncedJob, summary: dict[str, Any] | None, at: dt.datetime | None = None
) -> dict[str, Any]:
    return {
        "jobId": str(job.id),
        "assessmentId": job.assessment_id,
        "fundedAccountId": job.funded_account_id,
        "status": job.status,
        "summary": summary,
        "error": job.error or None,
        "timestamp": (at or timezone.now()).isoformat(),
    }
