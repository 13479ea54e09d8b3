"""The daily funded-account run: once per account and day, however often it fires."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from simulations import services
from simulations.models import SimulationJob
from tests.broker import queued_job_ids
from workers import schedules, tasks


@pytest.fixture
def accounts(core_service):
    core_service.active_accounts = [f"FA-{i}" for i in range(7)]
    return core_service


@pytest.mark.django_db
def test_one_job_per_account_without_a_recent_job(accounts, django_capture_on_commit_callbacks):
    services.create_job(funded_account_id="FA-3", enqueue=False)  # ran via the API an hour ago
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        created = tasks.schedule_daily_funded_runs.run(run_date="2026-11-22")
    assert created == 6 and len(enqueued) == 1  # one send, after commit, for the run's jobs
    jobs = SimulationJob.objects.filter(trigger="schedule")
    assert {str(j.id) for j in jobs} <= set(queued_job_ids())  # on the real broker
    assert sorted(j.funded_account_id for j in jobs) == [f"FA-{i}" for i in range(7) if i != 3]
    assert {j.run_date for j in jobs} == {dt.date(2026, 11, 22)}
    assert tasks.schedule_daily_funded_runs.run(run_date="2026-11-22") == 0  # a re-run the same day


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_in_one_window_create_each_job_once(accounts):
    results, barrier = [], threading.Barrier(4)

    def fire():
        barrier.wait()
        try:
            results.append(
                len(
                    services.create_daily_funded_jobs(
                        run_date=dt.date(2026, 11, 23), account_ids=accounts.active_accounts
                    )
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 7
    assert SimulationJob.objects.filter(trigger="schedule").count() == 7


@pytest.mark.django_db
def test_the_database_refuses_a_second_run_for_the_same_day():
    from django.db import IntegrityError, transaction

    SimulationJob.objects.create(funded_account_id="FA-x", trigger="schedule", run_date=dt.date(2026, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        SimulationJob.objects.create(funded_account_id="FA-x", trigger="schedule", run_date=dt.date(2026, 1, 1))


@pytest.mark.django_db
def test_beat_schedules_exist_with_explicit_utc_and_expiry(settings):
    daily = PeriodicTask.objects.get(name=schedules.DAILY_TASK_NAME)
    assert daily.task == "montecarlo.schedule_daily_funded_runs" and daily.queue == "maintenance"
    assert (daily.crontab.hour, daily.crontab.minute, str(daily.crontab.timezone)) == ("2", "0", "UTC")
    assert daily.expire_seconds == 6 * 3600
    sweep = PeriodicTask.objects.get(name=schedules.SWEEP_TASK_NAME)
    assert sweep.interval.every == settings.STALE_JOB_SWEEP_INTERVAL
    book = PeriodicTask.objects.get(name=schedules.BOOK_TASK_NAME)
    assert (book.task, book.queue) == ("montecarlo.build_book_reports", "maintenance")
    assert book.interval.every == settings.BOOK_REPORT_INTERVAL
    settings.DAILY_FUNDED_RUN_TIME = "05:30"
    schedules.ensure_schedules()
    daily.refresh_from_db()
    assert (daily.crontab.hour, daily.crontab.minute) == ("5", "30")
    assert PeriodicTask.objects.filter(name=schedules.DAILY_TASK_NAME).count() == 1


@pytest.mark.django_db
def test_a_core_service_outage_is_retried_not_swallowed(settings):
    from simulations.clients import CoreServiceError

    settings.CORE_SERVICE_URL = "http://127.0.0.1:1"
    settings.CORE_SERVICE_RETRIES = 0
    with pytest.raises(CoreServiceError):
        tasks.schedule_daily_funded_runs.run(run_date="2026-11-22")
    assert CoreServiceError in tasks.schedule_daily_funded_runs.autoretry_for


@pytest.mark.django_db
def test_each_account_runs_under_the_rule_set_the_core_service_names(accounts):
    rule_set = services.save_rule_set(name="50k-funded", rules={"maxDrawdown": 2_500}, starting_balance=50_000.0)
    accounts.account_rule_sets["FA-2"] = "50k-funded"
    assert tasks.schedule_daily_funded_runs.run(run_date="2026-11-24") == 7
    named = SimulationJob.objects.get(funded_account_id="FA-2")
    assert named.rule_set == rule_set and named.input_data["config"]["rules"] == {"max_drawdown": 2_500}
    assert named.input_data["config"]["starting_balance"] == 50_000.0
    assert SimulationJob.objects.filter(rule_set__isnull=True).count() == 6
