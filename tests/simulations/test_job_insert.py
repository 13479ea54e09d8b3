"""New jobs inserted by COPY (``batch.insert_jobs``) are the rows the ORM's INSERT writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from simulations.models import JobStatus, SimulationJob
from simulations.services import access
from simulations.services.batch import insert_jobs
from simulations.services.jobs import build_job
from tests import factories

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def a_job(assessment_id: str, **kw) -> SimulationJob:
    client = access.create_client(name=f"insert-{assessment_id}", scopes=["submit"], work_budget=10**12)
    trades = factories.trades(12, dated=True)
    trades[0]["note"] = 'tab\t, newline\n, backslash \\ and "quotes" é'  # what a text COPY must escape
    config = factories.config(paths=500, rules={"profit_target": 500, "max_drawdown": 400})
    return build_job(assessment_id=assessment_id, trades=trades, config=config, client=client, **kw)


def stored(job: SimulationJob) -> dict:
    row = SimulationJob.objects.filter(pk=job.pk).values().get()
    assert row["client_id"] == job.client_id  # each its own client
    assert row["request_fingerprint"] == job.request_fingerprint  # of its own assessment id
    differ = ("id", "assessment_id", "client_id", "request_fingerprint", "created_at", "updated_at")
    return {k: v for k, v in row.items() if k not in differ}


def test_copy_writes_every_field_as_the_orm_insert_does():
    by_orm, by_copy = a_job("INS-ORM", idempotency_key="k-1"), a_job("INS-COPY", idempotency_key="k-1")
    SimulationJob.objects.bulk_create([by_orm])
    insert_jobs([by_copy])
    assert not by_copy._state.adding and by_copy._state.db == "default"  # saved, as bulk_create leaves it
    assert stored(by_copy) == stored(by_orm)
    copied = SimulationJob.objects.get(pk=by_copy.pk)
    assert copied.status == JobStatus.PENDING and copied.result is None
    assert copied.input_data == json.loads(json.dumps(by_copy.input_data))  # the tricky note survives
    assert copied.updated_at is not None and copied.created_at == by_copy.created_at


def test_a_duplicate_key_is_an_integrity_error_and_nothing_of_it_is_written():
    first = a_job("INS-DUP-1", idempotency_key="same")
    insert_jobs([first])
    again = build_job(assessment_id="INS-DUP-2", trades=factories.trades(), client=first.client)
    again.idempotency_key = "same"
    other = build_job(assessment_id="INS-DUP-3", trades=factories.trades(), client=first.client)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_jobs([other, again])
    assert not SimulationJob.objects.filter(assessment_id__in=["INS-DUP-2", "INS-DUP-3"]).exists()
    assert SimulationJob.objects.filter(assessment_id="INS-DUP-1").count() == 1


def test_the_embedded_database_inserts_by_the_orm(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    script = (
        "from simulations.models import SimulationJob; from simulations.services.jobs import build_job; "
        "from simulations.services.batch import insert_jobs; "
        "from django.db import connection; "
        "jobs = [build_job(assessment_id=f'EMB-{i}', trades=[10.0, -5.0, 7.5]) for i in range(3)]; "
        "insert_jobs(jobs); "
        "print(connection.vendor, sorted(SimulationJob.objects.values_list('assessment_id', flat=True)))"
    )
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == ["sqlite", "['EMB-0',", "'EMB-1',", "'EMB-2']"]
