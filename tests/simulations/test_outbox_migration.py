"""Migration 0009 turns the outbox into a queue on the real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from simulations.models import EventOutbox

pytestmark = pytest.mark.django_db


def test_events_kafka_already_has_are_dropped_and_pending_ones_kept():
    before = [("simulations", "0008_partial_job_indexes")]
    old = MigrationExecutor(connection)
    old.migrate(before)
    job = (
        old.loader.project_state(before)
        .apps.get_model("simulations", "SimulationJob")
        .objects.create(assessment_id="OUTBOX-OLD")
    )
    with connection.cursor() as cursor:
        for topic, sent in (("a", True), ("b", False), ("c", True), ("d", False)):
            cursor.execute(
                "INSERT INTO simulations_eventoutbox (job_id, topic, key, payload, created_at, sent_at, attempts,"
                " last_error) VALUES (%s, %s, 'k', '{}', now(), CASE WHEN %s THEN now() END, 0, '')",
                [job.id, topic, sent],
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(EventOutbox.objects.values_list("topic", flat=True)) == ["b", "d"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'simulations_eventoutbox'")
        assert [name for (name,) in cursor.fetchall()] == ["simulations_eventoutbox_pkey"]
