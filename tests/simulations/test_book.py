"""The firm's book after each daily run, and each account's risk over time: real daily
runs (the fake Core Service's accounts, funded rule sets with payouts) on the real
PostgreSQL, read over HTTP by an operator."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.utils import timezone

from simulations import services
from simulations.models import BookReport, SimulationJob
from tests import factories
from workers import tasks

pytestmark = pytest.mark.django_db
DAY1, DAY2 = dt.date(2026, 11, 30), dt.date(2026, 12, 1)
FUNDED = {"maxDrawdown": 2_500, "drawdownType": "trailing"}
POLICY = {"split": 0.8, "cadenceDays": 5, "buffer": 500, "minPayout": 200}


def run_day(day, core_service, trades_by_account):
    for account, trades in trades_by_account.items():
        core_service.account_trades[account] = trades
    jobs = services.create_daily_funded_jobs(
        run_date=day, account_ids=list(trades_by_account), rule_sets=dict.fromkeys(trades_by_account, "funded")
    )
    for job in jobs:
        services.run_job(job_id=job.id, worker_id="w:1")
    return {j.funded_account_id: SimulationJob.objects.get(pk=j.pk) for j in jobs}


@pytest.fixture
def two_days(core_service, settings):
    settings.DEFAULT_JOB_CONFIG = {"paths": 4_000, "seed": 1}
    settings.BOOK_DRIFT_THRESHOLD = 0.1
    services.save_rule_set(name="funded", rules=FUNDED, starting_balance=50_000.0, payout=POLICY)
    steady = factories.trades(80, dated=True, mean=60.0, sd=250.0)
    first = run_day(DAY1, core_service, {f"FA-{i}": factories.trades(80, seed=i, dated=True, mean=40.0, sd=300.0)
                                         for i in range(5)} | {"FA-steady": steady})  # fmt: skip
    # a day later: the daily run skips an account with a job in the last 24 h
    SimulationJob.objects.filter(run_date=DAY1).update(created_at=timezone.now() - dt.timedelta(days=1, hours=1))
    worse = factories.trades(80, seed=0, dated=True, mean=-60.0, sd=500.0)  # FA-0 trades far worse
    second = run_day(DAY2, core_service, {"FA-0": worse, "FA-1": factories.trades(80, seed=1, dated=True, mean=40.0,
                                          sd=300.0), "FA-steady": steady, "FA-new": steady})  # fmt: skip
    return first, second


def test_each_daily_run_gets_a_book_report_summing_its_accounts(two_days):
    first, second = two_days
    built = services.build_due_book_reports(days=10_000)
    assert [r.run_date for r in built] == [DAY1, DAY2]
    assert services.build_due_book_reports(days=10_000) == []  # nothing changed since
    report = BookReport.objects.get(run_date=DAY1)
    summaries = [j.summary for j in first.values()]
    assert (report.accounts, report.completed, report.failed) == (6, 6, 0)
    assert report.expected_payouts == pytest.approx(sum(s["payout"]["expectedPaid"] for s in summaries))
    assert report.payouts_std == pytest.approx(math.sqrt(sum(s["payout"]["paidStd"] ** 2 for s in summaries)))
    assert report.expected_breaches == pytest.approx(sum(s["probabilityOfFail"] for s in summaries))
    assert report.expected_payouts > 0 and 0 < report.expected_breaches < 6
    paid = [a["expectedPaid"] for a in report.top_accounts]
    assert len(paid) == 6 and paid == sorted(paid, reverse=True)
    assert report.drifted == []  # a first run has nothing to drift from

    later = BookReport.objects.get(run_date=DAY2)
    (drift,) = later.drifted
    assert drift["account"] == "FA-0" and drift["rise"] > 0.1
    assert drift["previous"] == first["FA-0"].summary["probabilityOfFail"]
    assert drift["current"] == second["FA-0"].summary["probabilityOfFail"]


def test_the_reports_and_an_accounts_risk_over_http(two_days):
    first, second = two_days
    tasks.build_book_reports()  # the beat task: builds them and sets the drift gauge
    from simulations import metrics

    assert metrics.BREACH_DRIFT_ACCOUNTS._value.get() == 1
    operator, reader = factories.api_client("read", "operate"), factories.api_client("read")
    body = operator.get(f"/reports/daily/{DAY2}").json()
    assert body["runDate"] == str(DAY2) and body["accounts"] == 4 and body["drifted"][0]["account"] == "FA-0"
    low, high = body["payoutsCi95"]
    assert low <= body["expectedPayouts"] <= high and "independent" in body["intervals"]
    assert reader.get(f"/reports/daily/{DAY2}").status_code == 403
    assert operator.get("/reports/daily/2026-01-01").status_code == 404
    bad = operator.get("/reports/daily/yesterday")
    assert bad.status_code == 400 and "date" in bad.json()["fields"]

    risk = operator.get("/funded-accounts/FA-0/risk").json()
    assert risk["fundedAccountId"] == "FA-0" and [r["runDate"] for r in risk["runs"]] == [str(DAY1), str(DAY2)]
    for run, job in zip(risk["runs"], (first["FA-0"], second["FA-0"]), strict=True):
        assert run["probabilityOfBreach"] == job.summary["probabilityOfFail"]
        assert run["breachCi95"][0] <= run["probabilityOfBreach"] <= run["breachCi95"][1]
        assert run["expectedPayout"] == job.summary["payout"]["expectedPaid"]
        assert run["payoutCi95"][0] <= run["expectedPayout"] <= run["payoutCi95"][1]
    assert operator.get("/funded-accounts/FA-none/risk").status_code == 404
    assert reader.get("/funded-accounts/FA-0/risk").status_code == 403


def test_an_operator_reads_the_book_in_the_admin_with_its_chart(two_days, client):
    from django.contrib.auth import get_user_model

    services.build_due_book_reports(days=10_000)
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    listed = client.get("/admin/simulations/bookreport/")
    assert listed.status_code == 200 and "Dec. 1, 2026" in listed.text
    chart = client.get("/admin/simulations/bookreport/chart.svg")
    assert chart.status_code == 200 and chart["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in chart.content and b"expected payouts" in chart.content
    page = client.get(f"/admin/simulations/bookreport/{BookReport.objects.get(run_date=DAY2).pk}/change/").text
    assert "FA-0" in page and "bookreport/chart.svg" in listed.text
