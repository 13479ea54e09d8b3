"""The daily funded-account run through a real broker and two real worker processes."""

from __future__ import annotations

import os
import time

import pytest
import redis

from simulations.models import SimulationJob
from tests.integration.test_kafka_bridge import wait

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_daily_task_sent_twice_to_two_real_workers_makes_one_job_each(make_worker, session_core_service):
    from montecarlo.celery import app

    session_core_service.active_accounts = [f"D-{i}" for i in range(6)]
    make_worker("daily-a", queues="maintenance")
    make_worker("daily-b", queues="maintenance")
    for _ in range(2):
        app.send_task("montecarlo.schedule_daily_funded_runs", kwargs={"run_date": "2026-12-01"}, queue="maintenance")
    wait(lambda: SimulationJob.objects.filter(trigger="schedule").count() >= 6, 60, "the scheduled jobs")
    time.sleep(2)  # the second run has finished too
    assert SimulationJob.objects.filter(trigger="schedule").count() == 6
    assert SimulationJob.objects.values("funded_account_id").distinct().count() == 6
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
