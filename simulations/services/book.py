"""The firm's book after each daily run: one row per run date summing what its accounts'
jobs say (expected payouts and breaches, with intervals by independence), the accounts
that contribute most, and those whose P(breach) rose since their last run (drift)."""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from simulations.models import BookReport, JobStatus, JobTrigger, SimulationJob
from simulations.selectors import account_numbers

logger = logging.getLogger(__name__)

TOP_ACCOUNTS = 20


def build_book_report(run_date: dt.date) -> BookReport:
    """The report of ``run_date``'s daily run, from its jobs as they are now (written
    again if it exists). Reads only the jobs' summaries, never their results."""
    jobs = SimulationJob.objects.filter(run_date=run_date, trigger=JobTrigger.SCHEDULE)
    rows = list(jobs.values_list("funded_account_id", "status", "summary", "id"))
    previous = _previous_breach(run_date)
    threshold = settings.BOOK_DRIFT_THRESHOLD
    paid_sum = paid_var = breach_sum = breach_var = 0.0
    completed = failed = 0
    accounts: list[dict[str, Any]] = []
    drifted: list[dict[str, Any]] = []
    for account, status, summary, job_id in rows:
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            failed += 1
        numbers = account_numbers(summary) if status == JobStatus.COMPLETED else None
        if numbers is None:
            continue
        completed += 1
        breach, paid, paid_std = numbers
        paid_sum, paid_var = paid_sum + paid, paid_var + paid_std**2
        breach_sum, breach_var = breach_sum + breach, breach_var + breach * (1.0 - breach)
        accounts.append({"account": account, "jobId": str(job_id), "expectedPaid": paid, "probabilityOfBreach": breach})
        before = previous.get(account)
        if before is not None and breach - before > threshold:
            drifted.append({"account": account, "previous": before, "current": breach, "rise": breach - before})
    accounts.sort(key=lambda a: (-a["expectedPaid"], -a["probabilityOfBreach"], a["account"]))
    drifted.sort(key=lambda d: (-d["rise"], d["account"]))
    fields = {
        "accounts": len(rows),
        "completed": completed,
        "failed": failed,
        "expected_payouts": paid_sum,
        "payouts_std": math.sqrt(paid_var),
        "expected_breaches": breach_sum,
        "breaches_std": math.sqrt(breach_var),
        "top_accounts": accounts[:TOP_ACCOUNTS],
        "drifted": drifted,
        "computed_at": timezone.now(),
    }
    with transaction.atomic():
        report, _ = BookReport.objects.update_or_create(run_date=run_date, defaults=fields)
    logger.info("book %s: %d accounts, %d completed, %d drifted", run_date, len(rows), completed, len(drifted))
    return report


def build_due_book_reports(*, days: int = 7) -> list[BookReport]:
    """The reports of the recent daily runs that changed since they were last built: a
    run with a job finished after its report (or none yet). A run whose jobs still
    run is built again as they finish, so its report is complete once they all have."""
    since = timezone.now().date() - dt.timedelta(days=days)
    runs = (
        SimulationJob.objects.filter(trigger=JobTrigger.SCHEDULE, run_date__gte=since)
        .values("run_date")
        .annotate(last=Max("completed_at"))
    )
    built = {r.run_date: r.computed_at for r in BookReport.objects.filter(run_date__gte=since)}
    due = [
        r["run_date"]
        for r in runs
        if r["run_date"] not in built or (r["last"] is not None and r["last"] > built[r["run_date"]])
    ]
    return [build_book_report(day) for day in sorted(due)]


def _previous_breach(run_date: dt.date) -> dict[str, float]:
    """Each account's P(breach) at the daily run before ``run_date`` (the last one the
    book has): drift is the change since then."""
    runs = SimulationJob.objects.filter(trigger=JobTrigger.SCHEDULE, run_date__lt=run_date)
    before = runs.aggregate(last=Max("run_date"))["last"]
    if before is None:
        return {}
    out = {}
    for account, summary in runs.filter(run_date=before, status=JobStatus.COMPLETED).values_list(
        "funded_account_id", "summary"
    ):
        numbers = account_numbers(summary)
        if numbers is not None:
            out[account] = numbers[0]
    return out
