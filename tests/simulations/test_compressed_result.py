"""Results are stored as zlib-compressed JSON (simulations/fields.py) on the real PostgreSQL."""

from __future__ import annotations

import json
import math
import zlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from simulations.engine import SimulationConfig, simulate
from simulations.fields import compress_json
from simulations.models import SimulationJob

pytestmark = pytest.mark.django_db


def a_result() -> dict:
    return simulate([120.0, -80.0, 35.5, -240.0, 60.0], SimulationConfig(paths=500, seed=3)).to_dict()


def test_a_result_reads_back_equal_and_is_stored_compressed_inline():
    result = a_result()
    job = SimulationJob.objects.create(assessment_id="Z-1", result=result)
    assert SimulationJob.objects.get(pk=job.pk).result == json.loads(json.dumps(result))
    with connection.cursor() as cursor:
        cursor.execute("SELECT result, pg_column_size(result) FROM simulations_simulationjob WHERE id = %s", [job.pk])
        raw, stored = cursor.fetchone()
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'simulations_simulationjob'::regclass"
            " AND attname = 'result'"
        )
        (storage,) = cursor.fetchone()
    assert json.loads(zlib.decompress(bytes(raw))) == json.loads(json.dumps(result))
    assert stored < len(json.dumps(result)) / 2
    assert storage == "e"  # EXTERNAL: PostgreSQL never compresses it a second time


def test_no_result_is_null_and_nan_is_refused():
    job = SimulationJob.objects.create(assessment_id="Z-2")
    assert SimulationJob.objects.get(pk=job.pk).result is None
    with pytest.raises(ValueError):
        compress_json({"p": math.nan})


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_existing_jsonb_results():
    executor = MigrationExecutor(connection)
    executor.migrate([("simulations", "0003_lz4_toast_compression")])
    result = {"finalPnl": {"p50": 12.5}, "paths": 1000, "note": "ünïcode"}
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO simulations_simulationjob (id, assessment_id, status, trigger, request_fingerprint,"
            " input_data, result, error, attempts, worker_id, paths_done, paths_total, created_at, updated_at)"
            " VALUES (gen_random_uuid(), 'OLD-1', 'completed', 'api', '', '{}', %s::jsonb, '', 1, '', 0, 0,"
            " now(), now())",
            [json.dumps(result)],
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert SimulationJob.objects.get(assessment_id="OLD-1").result == result
