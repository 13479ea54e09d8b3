"""Bulk intake of completed assessments (the bridge's poll batch) on the real PostgreSQL
and the real Redis broker: one job per assessment, in order, invalid ones reported."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from simulations import services
from simulations.errors import InvalidInput
from simulations.models import JobStatus, JobTrigger, SimulationJob
from simulations.services import CompletedAssessment
from tests.broker import queued_job_ids

# Real commits: tasks go out only after the creating transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queue():
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("simulations")
    yield
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("simulations")


def test_a_batch_makes_one_job_per_assessment_and_enqueues_each_once():
    outcomes = services.create_jobs_for_completed_assessments(
        [
            CompletedAssessment("B-1"),
            CompletedAssessment("B-2", "F-2", {"paths": 500}),
            CompletedAssessment("B-1"),  # delivered twice in the same batch
        ]
    )
    assert [o.assessment_id for o in outcomes] == ["B-1", "B-2", "B-1"]
    assert outcomes[0].id == outcomes[2].id
    jobs = SimulationJob.objects.filter(assessment_id__in=["B-1", "B-2"])
    assert jobs.count() == 2 and {j.trigger for j in jobs} == {JobTrigger.KAFKA}
    assert SimulationJob.objects.get(assessment_id="B-2").paths_total == 500
    assert sorted(queued_job_ids()) == sorted(str(j.id) for j in jobs)


def test_a_redelivered_batch_returns_the_same_jobs_and_re_sends_only_pending_ones():
    first = services.create_jobs_for_completed_assessments([CompletedAssessment("R-1"), CompletedAssessment("R-2")])
    SimulationJob.objects.filter(pk=first[1].id).update(status=JobStatus.COMPLETED)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("simulations")
    again = services.create_jobs_for_completed_assessments([CompletedAssessment("R-1"), CompletedAssessment("R-2")])
    assert [o.id for o in again] == [o.id for o in first]
    assert SimulationJob.objects.filter(assessment_id__in=["R-1", "R-2"]).count() == 2
    assert queued_job_ids() == [str(first[0].id)]


def test_an_invalid_event_is_reported_in_its_place_and_the_others_are_created():
    outcomes = services.create_jobs_for_completed_assessments(
        [
            CompletedAssessment("V-1"),
            CompletedAssessment("V-2", config={"paths": -5}),
            CompletedAssessment("V-3"),
        ]
    )
    assert isinstance(outcomes[1], InvalidInput) and "config.paths" in outcomes[1].errors
    assert [o.assessment_id for o in (outcomes[0], outcomes[2])] == ["V-1", "V-3"]
    assert not SimulationJob.objects.filter(assessment_id="V-2").exists()


def test_a_job_created_meanwhile_by_another_bridge_is_the_answer():
    other = services.create_job_for_completed_assessment(assessment_id="C-1")
    outcomes = services.create_jobs_for_completed_assessments([CompletedAssessment("C-1"), CompletedAssessment("C-2")])
    assert outcomes[0].id == other.id
    assert SimulationJob.objects.filter(assessment_id="C-1").count() == 1
