"""Named rule sets: versions, validation as the engine's, and jobs that name one (over
HTTP, from events, from the daily run), on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from simulations import services
from simulations.errors import InvalidInput
from simulations.models import EventOutbox, JobStatus, RuleSet, SimulationJob
from tests import factories

pytestmark = pytest.mark.django_db
TWO_PHASE = {"profitTarget": 8_000, "maxDrawdown": 5_000, "drawdownType": "trailing", "dailyLossLimit": 2_500}


@pytest.fixture
def rule_set() -> RuleSet:
    return services.save_rule_set(name="100k-eval", rules=TWO_PHASE, starting_balance=100_000.0)


def test_a_change_makes_a_new_version_and_nothing_new_without_one(rule_set):
    assert (rule_set.version, rule_set.rules["max_drawdown"]) == (1, 5_000)  # stored as the engine spells it
    again = services.save_rule_set(name="100k-eval", rules=TWO_PHASE, starting_balance=100_000.0)
    assert again.pk == rule_set.pk
    changed = services.save_rule_set(name="100k-eval", rules={**TWO_PHASE, "maxDrawdown": 4_000}, starting_balance=1e5)
    assert changed.version == 2 and RuleSet.objects.filter(name="100k-eval").count() == 2
    assert RuleSet.objects.get(pk=rule_set.pk).rules["max_drawdown"] == 5_000


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"name": "x", "rules": {"maxDrawdown": -1}}, "rules.maxDrawdown"),
        ({"name": "x", "rules": {"trailingLock": 0}}, "rules.trailingLock"),
        ({"name": "x", "rules": {"bogus": 1}}, "rules.bogus"),
        ({"name": "x", "rules": {}, "starting_balance": 0.0}, "startingBalance"),
        ({"name": "no spaces", "rules": {}}, "name"),
        ({"name": "dotted.name", "rules": {}}, "name"),  # a slug, as the admin's field takes it
        ({"name": "x", "rules": [1]}, "rules"),
    ],
)
def test_rules_are_validated_as_the_engine_validates_them(kwargs, field):
    with pytest.raises(InvalidInput) as caught:
        services.save_rule_set(**kwargs)
    assert field in caught.value.errors, caught.value.errors
    assert not RuleSet.objects.exists()


def test_a_job_takes_the_latest_version_and_keeps_it(rule_set):
    job = services.create_job(
        assessment_id="RS-1", trades=factories.trades(dated=True), rule_set="100k-eval", enqueue=False
    )
    assert job.rule_set == rule_set
    assert job.input_data["config"]["rules"] == rule_set.rules and job.input_data["config"]["starting_balance"] == 1e5
    services.save_rule_set(name="100k-eval", rules={**TWO_PHASE, "profitTarget": 10_000}, starting_balance=1e5)
    later = services.create_job(
        assessment_id="RS-2", trades=factories.trades(dated=True), rule_set="100k-eval", enqueue=False
    )
    assert later.rule_set.version == 2 and later.input_data["config"]["rules"]["profit_target"] == 10_000
    job.refresh_from_db()
    assert job.rule_set.version == 1 and job.input_data["config"]["rules"]["profit_target"] == 8_000
    services.run_job(job_id=job.id, worker_id="w:1")
    job.refresh_from_db()
    assert job.result["config"]["rules"]["max_drawdown"] == 5_000 and job.result["config"]["starting_balance"] == 1e5


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"rule_set": "absent"}, "no rule set named 'absent'"),
        ({"rule_set": "100k-eval", "config": {"rules": {"profitTarget": 1}}}, "sets rules"),
        ({"rule_set": "100k-eval", "config": {"startingBalance": 50_000}}, "sets startingBalance"),
        ({"rule_set": "bad name\x00"}, "a rule set's name"),
    ],
)
def test_a_rule_set_that_cannot_apply_is_refused_with_the_reason(rule_set, kwargs, reason):
    with pytest.raises(InvalidInput) as caught:
        services.create_job(assessment_id="RS-X", trades=factories.trades(), enqueue=False, **kwargs)
    assert reason in caught.value.errors["ruleSet"][0], caught.value.errors
    assert not SimulationJob.objects.exists()


def test_over_http_a_job_names_its_rule_set_and_shows_the_version(rule_set):
    api = factories.api_client()
    created = api.post(
        "/simulations",
        {"assessmentId": "RS-H", "trades": factories.trades(dated=True), "ruleSet": "100k-eval"},
        format="json",
    )
    assert created.status_code == 202, created.json()
    detail = api.get(f"/simulations/{created.json()['jobId']}").json()
    assert detail["ruleSet"] == {"name": "100k-eval", "version": 1}
    assert detail["inputData"]["config"]["rules"]["maxDrawdown"] == 5_000
    unknown = api.post("/simulations", {"assessmentId": "RS-U", "ruleSet": "nope"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["fields"] == {"ruleSet": ["no rule set named 'nope'"]}
    bad = api.post("/simulations", {"assessmentId": "RS-B", "ruleSet": "a b"}, format="json")
    assert bad.status_code == 400 and "ruleSet" in bad.json()["fields"]


def test_a_batch_reads_each_rule_set_once(rule_set):
    with CaptureQueriesContext(connection) as queries:
        jobs = services.create_jobs(
            [
                {"assessment_id": f"RS-B{i}", "trades": factories.trades(8, dated=True), "rule_set": "100k-eval"}
                for i in range(20)
            ]
        )
    assert {j.rule_set_id for j in jobs} == {rule_set.pk}
    assert sum('FROM "simulations_ruleset"' in q["sql"] for q in queries.captured_queries) == 1


def test_an_event_may_name_a_rule_set_and_a_bad_name_is_refused_for_the_dlq(rule_set):
    good, bad = services.create_jobs_for_completed_assessments(
        [
            services.CompletedAssessment("RS-E1", rule_set="100k-eval"),
            services.CompletedAssessment("RS-E2", rule_set="missing"),
        ]
    )
    assert good.rule_set == rule_set and good.input_data["config"]["rules"] == rule_set.rules
    assert isinstance(bad, InvalidInput) and "missing" in bad.errors["ruleSet"][0]


def test_the_daily_run_takes_each_accounts_rule_set_and_fails_one_it_cannot_find(rule_set):
    created = services.create_daily_funded_jobs(
        run_date=dt.date(2026, 12, 1),
        account_ids=["FA-A", "FA-B", "FA-C"],
        rule_sets={"FA-A": "100k-eval", "FA-C": "retired"},
    )
    jobs = {j.funded_account_id: SimulationJob.objects.get(pk=j.pk) for j in created}
    assert jobs["FA-A"].rule_set == rule_set and jobs["FA-A"].status == JobStatus.PENDING
    assert jobs["FA-B"].rule_set is None and "rules" not in jobs["FA-B"].input_data["config"]
    assert jobs["FA-C"].status == JobStatus.FAILED and "'retired'" in jobs["FA-C"].error
    assert EventOutbox.objects.filter(job_id=jobs["FA-C"].id, topic="montecarlo.simulation-completed").exists()


def test_operators_edit_a_rule_set_in_the_admin_as_a_new_version(client, rule_set):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    job = services.create_job(
        assessment_id="RS-A", trades=factories.trades(4, dated=True), rule_set="100k-eval", enqueue=False
    )
    page = f"/admin/simulations/ruleset/{rule_set.pk}/change/"
    form = {"description": "tighter", "starting_balance": "100000", "rules": '{"maxDrawdown": 3000}'}
    assert client.post(page, form).status_code == 302
    assert list(RuleSet.objects.filter(name="100k-eval").values_list("version", flat=True)) == [2, 1]
    assert RuleSet.objects.get(name="100k-eval", version=2).rules == {"max_drawdown": 3000}
    job.refresh_from_db()
    assert job.rule_set.version == 1
    refused = client.post(page, {**form, "rules": '{"maxDrawdown": -3}'})
    assert refused.status_code == 200 and "rules.maxDrawdown: must be a positive amount" in refused.text
    added = client.post("/admin/simulations/ruleset/add/", {"name": "50k", "rules": '{"profitTarget": 4000}'})
    assert added.status_code == 302 and RuleSet.objects.get(name="50k").version == 1
    assert client.post(f"/admin/simulations/ruleset/{rule_set.pk}/delete/", {"post": "yes"}).status_code == 403
    listed = client.get("/admin/simulations/simulationjob/?rule_set__name=100k-eval").text
    assert str(job.id) in listed


def test_a_rule_set_may_hold_evaluation_phases():
    phases = [
        {"rules": {"profitTarget": 8_000, "maxDrawdown": 10_000}},
        {"rules": {"profitTarget": 5_000, "maxDrawdown": 10_000}, "startingBalance": 100_000},
    ]
    saved = services.save_rule_set(name="100k-2phase", phases=phases, starting_balance=100_000.0)
    assert saved.phases[1] == {"rules": {"profit_target": 5_000, "max_drawdown": 10_000}, "starting_balance": 100_000}
    job = services.create_job(assessment_id="RS-P", trades=factories.trades(), rule_set="100k-2phase", enqueue=False)
    assert job.input_data["config"]["phases"] == saved.phases and "rules" not in job.input_data["config"]
    services.run_job(job_id=job.id, worker_id="w:1")
    job.refresh_from_db()
    assert len(job.result["phase_pass"]) == 2
    with pytest.raises(InvalidInput) as caught:
        services.save_rule_set(name="bad", phases=[{"rules": {"maxDrawdown": 5}}])
    assert "phases[0].rules.profitTarget" in caught.value.errors
    with pytest.raises(InvalidInput) as caught:
        services.create_job(assessment_id="RS-Q", rule_set="100k-2phase", config={"phases": phases}, enqueue=False)
    assert "sets phases" in caught.value.errors["ruleSet"][0]


def test_a_funded_rule_set_with_payouts_runs_in_the_daily_run_and_its_event_carries_them(core_service, client):
    core_service.account_trades["FA-P"] = factories.trades(60, dated=True, sd=400.0)
    funded = {"maxDrawdown": 3_000, "drawdownType": "trailing", "trailingBasis": "end_of_day", "trailingLock": 100}
    policy = {"split": 0.9, "cadenceDays": 5, "buffer": 500, "minPayout": 250, "minWinningDays": 2, "fees": 600}
    saved = services.save_rule_set(name="100k-funded", rules=funded, starting_balance=100_000.0, payout=policy)
    assert saved.payout["cadence_days"] == 5 and saved.payout["fees"] == 600
    with pytest.raises(InvalidInput) as caught:
        services.save_rule_set(name="bad", rules={"profitTarget": 5_000}, payout={"split": 2})
    assert set(caught.value.errors) == {"payout.split", "rules.profitTarget"}
    (job,) = services.create_daily_funded_jobs(
        run_date=dt.date(2026, 12, 1), account_ids=["FA-P"], rule_sets={"FA-P": "100k-funded"}
    )
    job = SimulationJob.objects.get(pk=job.pk)
    assert job.input_data["config"]["payout"] == saved.payout
    services.run_job(job_id=job.id, worker_id="w:1")
    job.refresh_from_db()
    payouts = job.result["payouts"]
    assert payouts["paid"]["count"] == job.result["paths"] and 0 < payouts["any_payout"]["estimate"] < 1
    assert payouts["firm_net"]["mean"] == pytest.approx(600 - payouts["paid"]["mean"])
    event = EventOutbox.objects.get(job_id=job.id, topic="montecarlo.simulation-completed")
    summary = event.payload["summary"]
    assert summary["payout"]["expectedPaid"] == payouts["paid"]["mean"]
    assert summary["payout"]["probabilityOfBreach"] == job.result["probabilities"]["fail"]["estimate"]
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    page = client.get(f"/admin/simulations/simulationjob/{job.id}/change/").text
    assert "paid to the trader" in page and "days to first payout" in page and "firm&#x27;s net" in page
    with pytest.raises(InvalidInput) as caught:
        services.create_job(assessment_id="RS-F", rule_set="100k-funded", config={"payout": {}}, enqueue=False)
    assert "payout" in caught.value.errors["ruleSet"][0]
