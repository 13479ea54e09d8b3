"""Work budgets at the API, on the real PostgreSQL: a client's queued and unfinished
trade samples are bounded (429 naming the limit), a batch's total too (400), the
budget frees as jobs finish, and the system client's jobs are not counted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from simulations import services
from simulations.models import JobStatus, SimulationJob
from simulations.services import access
from tests import factories

pytestmark = pytest.mark.django_db

TRADES = [{"pnl": p} for p in (10.0, -4.0, 7.5, -2.0)]  # one trade per unit


def body(paths: int, horizon: int = 100, account: str = "ACC-B") -> dict:
    return {"assessmentId": account, "trades": TRADES, "config": {"paths": paths, "horizon": horizon}}


def test_a_job_records_the_samples_it_will_draw():
    inline = services.create_job(assessment_id="A", trades=[1.0, -1.0], config={"paths": 300, "horizon": 50})
    assert inline.samples_planned == 300 * 50
    auto = services.create_job(assessment_id="A", trades=[1.0, -1.0], config={"paths": "auto", "autoMaxPaths": 4000})
    assert auto.samples_planned == 4000 * 2  # at most auto_max_paths; horizon: the history's length
    dated = [
        {"pnl": 1.0, "date": "2026-01-05"},
        {"pnl": 2.0, "date": "2026-01-05"},
        {"pnl": -1.0, "date": "2026-01-06"},
    ]
    by_day = services.create_job(assessment_id="A", trades=dated, config={"paths": 10, "horizon": 20, "unit": "day"})
    assert by_day.samples_planned == 10 * 20 * 1.5  # 1.5 trades a day on average
    fetched = services.create_job(assessment_id="A", config={"paths": 1000}, enqueue=False)
    assert fetched.samples_planned == 1000 * 252  # an unseen history counts as a year of days


def test_above_the_budget_a_submit_is_a_429_naming_it_and_nothing_is_created(settings):
    settings.API_CLIENT_MAX_QUEUED_SAMPLES = 100_000
    api = factories.api_client("submit", "read")
    assert api.post("/simulations", body(600), format="json").status_code == 202  # 60,000 queued
    refused = api.post("/simulations", body(500), format="json")  # 50,000 more
    assert refused.status_code == 429, refused.content
    answer = refused.json()
    assert answer["error"] == "work_budget" and "API_CLIENT_MAX_QUEUED_SAMPLES" in answer["detail"]
    assert (answer["budget"], answer["queued"], answer["requested"]) == (100_000, 60_000, 50_000)
    assert SimulationJob.objects.filter(client=api.record).count() == 1
    # a batch that would go above it is refused whole
    batch = api.post("/simulations/batch", {"jobs": [body(200), body(300)]}, format="json")
    assert batch.status_code == 429 and batch.json()["requested"] == 50_000
    assert SimulationJob.objects.filter(client=api.record).count() == 1
    # what fits still goes in
    assert api.post("/simulations", body(400), format="json").status_code == 202


def test_finished_and_cancelled_jobs_free_the_budget(settings):
    settings.API_CLIENT_MAX_QUEUED_SAMPLES = 100_000
    api = factories.api_client("submit", "read", "cancel")
    first = api.post("/simulations", body(1000), format="json").json()["jobId"]
    assert api.post("/simulations", body(1), format="json").status_code == 429
    api.post(f"/simulations/{first}/cancel")
    second = api.post("/simulations", body(1000), format="json")
    assert second.status_code == 202
    SimulationJob.objects.filter(pk=second.json()["jobId"]).update(status=JobStatus.RUNNING)
    assert api.post("/simulations", body(1), format="json").status_code == 429  # running still counts
    SimulationJob.objects.filter(pk=second.json()["jobId"]).update(status=JobStatus.COMPLETED)
    assert api.post("/simulations", body(1000), format="json").status_code == 202


def test_budgets_are_per_client_and_a_client_may_have_its_own():
    small = factories.api_client("submit")
    access.create_client(name=small.record.name, scopes=["submit"], work_budget=20_000)
    other = factories.api_client("submit")
    assert small.post("/simulations", body(300), format="json").status_code == 429  # 30,000 > its 20,000
    detail = small.post("/simulations", body(300), format="json").json()["detail"]
    assert "this client's work budget" in detail
    assert other.post("/simulations", body(300), format="json").status_code == 202  # the default budget


def test_an_idempotent_retry_is_not_counted_again(settings):
    settings.API_CLIENT_MAX_QUEUED_SAMPLES = 100_000
    api = factories.api_client("submit")
    first = api.post("/simulations", body(900), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/simulations", body(900), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202 and again.status_code == 202
    assert first.json()["jobId"] == again.json()["jobId"]


def test_a_batch_above_its_total_limit_is_a_400_naming_it(settings):
    settings.API_BATCH_MAX_SAMPLES = 50_000
    api = factories.api_client("submit")
    refused = api.post("/simulations/batch", {"jobs": [body(300), body(300)]}, format="json")
    assert refused.status_code == 400
    assert "API_BATCH_MAX_SAMPLES" in refused.json()["fields"]["jobs"][0]
    assert api.post("/simulations/batch", {"jobs": [body(200), body(300)]}, format="json").status_code == 202


def test_the_system_clients_jobs_are_not_budgeted(settings):
    settings.API_CLIENT_MAX_QUEUED_SAMPLES = 10
    settings.API_BATCH_MAX_SAMPLES = 10
    requests = [{"assessment_id": f"K-{i}", "trades": TRADES, "config": {"paths": 1000}} for i in range(3)]
    jobs = services.create_jobs(requests)  # the system client's, as the bridge's and the CLI's are
    assert len(jobs) == 3 and all(j.client.is_system for j in jobs)


def test_the_operator_command_sets_a_budget(capsys):
    from django.core.management import call_command

    call_command("api_keys", "create", "budgeted", "--scopes", "submit", "--budget", "5000")
    call_command("api_keys", "list")
    assert "budgeted\tsubmit\tbudget: 5000\t" in capsys.readouterr().out
    with pytest.raises(Exception, match="budget"):
        call_command("api_keys", "create", "budgeted", "--budget", "-1")


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_cannot_both_slip_under_the_budget(settings):
    """Eight threads, each its own connection, submit at once: the row lock lets
    exactly what fits in."""
    settings.API_CLIENT_MAX_QUEUED_SAMPLES = 250_000
    record = factories.api_client("submit").record
    codes: list[int] = []
    start = threading.Barrier(8)

    def submit() -> None:
        api = APIClient()
        api.force_authenticate(user=record)
        start.wait()
        try:
            codes.append(api.post("/simulations", body(1000), format="json").status_code)  # 100,000 each
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202, 202] + [429] * 6
    assert SimulationJob.objects.filter(client=record).count() == 2
