"""The Django admin is how operators inspect jobs: list, filter, search, read."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from simulations import services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def jobs():
    done = services.create_job(
        assessment_id="ASSESS-77", trades=factories.trades(), config=factories.config(), enqueue=False
    )
    services.run_job(job_id=done.id, worker_id="w:1")
    pending = services.create_job(funded_account_id="FUND-12", enqueue=False)
    return done, pending


def test_list_filters_and_search(operator, jobs):
    done, pending = jobs
    page = operator.get("/admin/simulations/simulationjob/")
    assert page.status_code == 200
    assert str(done.id) in page.text and str(pending.id) in page.text
    filtered = operator.get("/admin/simulations/simulationjob/?status__exact=completed").text
    assert str(done.id) in filtered and str(pending.id) not in filtered
    found = operator.get("/admin/simulations/simulationjob/?q=FUND-12").text
    assert str(pending.id) in found and str(done.id) not in found
    year = done.created_at.year
    by_year = operator.get(f"/admin/simulations/simulationjob/?created_at__year={year}").text
    assert str(done.id) in by_year
    assert str(done.id) not in operator.get(f"/admin/simulations/simulationjob/?created_at__year={year - 1}").text


def test_detail_shows_input_and_result_read_only(operator, jobs):
    done, _ = jobs
    page = operator.get(f"/admin/simulations/simulationjob/{done.id}/change/")
    assert page.status_code == 200
    assert "probabilities" in page.text and "profit_target" in page.text
    assert 'name="_save"' not in page.text  # nothing to save: state changes go through services
    assert operator.post(f"/admin/simulations/simulationjob/{done.id}/change/", {"status": "failed"}).status_code == 403
    assert operator.get("/admin/simulations/simulationjob/add/").status_code == 403
    assert operator.get("/admin/simulations/eventoutbox/").status_code == 200


def test_operators_cancel_jobs_from_the_list(operator, jobs):
    done, pending = jobs
    page = operator.get("/admin/simulations/simulationjob/")
    assert 'value="cancel_jobs"' in page.text
    response = operator.post(
        "/admin/simulations/simulationjob/",
        {"action": "cancel_jobs", "_selected_action": [str(done.id), str(pending.id)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 job(s) cancelled, 1 already finished" in response.text
    done.refresh_from_db()
    pending.refresh_from_db()
    assert (done.status, pending.status) == ("completed", "cancelled")


def test_the_outbox_page_lists_waiting_failing_and_put_off_events(operator, jobs):
    import datetime as dt

    from django.utils import timezone

    from simulations.models import EventOutbox

    done, _ = jobs
    refused, waiting = EventOutbox.objects.filter(job=done).order_by("id")[:2]
    put_off_until = timezone.now() + dt.timedelta(hours=1)
    EventOutbox.objects.filter(pk=refused.pk).update(
        attempts=3, last_error="MSG_SIZE_TOO_LARGE", next_attempt_at=put_off_until
    )
    timed_out = EventOutbox.objects.create(
        job=done, topic="montecarlo.simulation-completed", key="x", payload={}, attempts=1, last_error="_MSG_TIMED_OUT"
    )
    shown = (refused.pk, waiting.pk, timed_out.pk)

    def listed(query: str) -> set[int]:
        page = operator.get(f"/admin/simulations/eventoutbox/{query}")
        assert page.status_code == 200
        return {pk for pk in shown if f"/admin/simulations/eventoutbox/{pk}/change/" in page.text}

    assert listed("") == set(shown)
    assert listed("?delivery=failing") == {refused.pk, timed_out.pk}
    assert listed("?delivery=waiting") == {waiting.pk}
    assert listed("?delivery=put_off") == {refused.pk}
    assert "MSG_SIZE_TOO_LARGE" in operator.get("/admin/simulations/eventoutbox/?delivery=failing").text


def test_the_list_shows_the_summary_and_reads_no_result_or_input(operator, jobs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    done, _ = jobs
    done.refresh_from_db()
    big = services.create_job(
        assessment_id="ASSESS-78", trades=factories.trades(20_000), config=factories.config(), enqueue=False
    )
    services.run_job(job_id=big.id, worker_id="w:1")
    with CaptureQueriesContext(connection) as queries:
        page = operator.get("/admin/simulations/simulationjob/")
    assert page.status_code == 200
    p_pass = done.result["probabilities"]["pass"]["estimate"]
    assert f"{p_pass:.1%}" in page.text and "P(pass)" in page.text and "P(ruin)" in page.text
    job_selects = [q["sql"] for q in queries.captured_queries if 'FROM "simulations_simulationjob"' in q["sql"]]
    assert job_selects and len(queries.captured_queries) <= 12, [q["sql"][:120] for q in queries.captured_queries]
    for sql in job_selects:
        assert '"simulations_simulationjob"."result"' not in sql and '"input_data"' not in sql, sql
    # The bytes PostgreSQL hands over for those queries, measured on their own rows:
    # three jobs' list columns, against the big job's stored input and result alone.
    with connection.cursor() as cursor:
        listed = 0
        for sql in job_selects:
            cursor.execute(f"SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM ({sql}) t")
            listed += cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_column_size(input_data) + pg_column_size(result) FROM simulations_simulationjob WHERE id = %s",
            [big.id],
        )
        blobs = cursor.fetchone()[0]
    assert listed < 8_000 < blobs, (listed, blobs)


def test_a_job_page_draws_its_charts_and_tables_and_folds_the_json(operator, jobs):
    done, pending = jobs

    def charts_of(job) -> str:
        page = operator.get(f"/admin/simulations/simulationjob/{job.id}/change/").text
        return page.split('class="mc-charts">')[1].split("</div>")[0]

    page = operator.get(f"/admin/simulations/simulationjob/{done.id}/change/").text
    drawn = charts_of(done)
    assert drawn.count("<svg") == 2 and "Equity over" in drawn and "Final P&amp;L across" in drawn
    assert "95% interval" in page and "p50" in page and "collapse" in page
    causes = page.split('class="mc-causes">')[1].split("</table>")[0]
    done.refresh_from_db()
    for cause, n in done.result["failure_causes"].items():
        share = n / done.result["paths"]
        assert f"<th>{cause.replace('_', ' ')}</th><td>{share:.1%}</td><td>{n:,}</td>" in causes, causes
    waiting = charts_of(pending)
    assert waiting.count("<svg") == 2 and "pending: no result yet" in waiting


def test_operators_rerun_a_failed_job_as_a_new_job(operator, jobs):
    from simulations.models import JobStatus, SimulationJob

    done, _ = jobs
    failed = services.create_job(
        assessment_id="A-F", trades=factories.trades(), config=factories.config(), enqueue=False
    )
    services.fail_job(job_id=failed.id, error="Core Service down")
    response = operator.post(
        "/admin/simulations/simulationjob/",
        {"action": "rerun_jobs", "_selected_action": [str(failed.id), str(done.id)]},
        follow=True,
    )
    assert "1 new job(s) created, 1 skipped" in response.text
    new = SimulationJob.objects.exclude(pk__in=[failed.pk, done.pk]).get(assessment_id="A-F")
    assert new.status == JobStatus.PENDING and new.input_data == failed.input_data and new.client_id == failed.client_id
    assert SimulationJob.objects.get(pk=failed.pk).status == JobStatus.FAILED


def test_jobs_are_filtered_by_the_rules_they_use(operator):
    def job(account, rules):
        return services.create_job(
            funded_account_id=account, trades=[1.0, -1.0], config={"paths": 10, "rules": rules}, enqueue=False
        )

    target = job("R-TARGET", {"profitTarget": 100})
    trailing = job("R-TRAIL", {"maxDrawdown": 50, "drawdownType": "trailing"})
    bare = job("R-NONE", {})
    firm = services.create_job(
        funded_account_id="R-FIRM",
        trades=[1.0, -1.0],
        config={
            "paths": 10,
            "tradesPerDay": 1,
            "rules": {
                "profitTarget": 5,
                "maxDrawdown": 9,
                "drawdownType": "trailing",
                "trailingBasis": "end_of_day",
                "minTradingDays": 2,
            },
        },  # fmt: skip
        enqueue=False,
    )

    def listed(value):
        page = operator.get(f"/admin/simulations/simulationjob/?rules={value}").text
        return {j.funded_account_id for j in (target, trailing, bare, firm) if str(j.id) in page}

    assert listed("end_of_day") == {"R-FIRM"} and listed("min_trading_days") == {"R-FIRM"}
    assert listed("consistency") == set()

    assert listed("profit_target") == {"R-TARGET", "R-FIRM"}
    assert listed("trailing") == {"R-TRAIL", "R-FIRM"}
    assert listed("max_drawdown") == {"R-TRAIL", "R-FIRM"}
    assert listed("none") == {"R-NONE"}
