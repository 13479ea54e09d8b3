"""Create the project's topics with their partitions and retention."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from simulations.events import ALL_TOPICS, ASSESSMENT_COMPLETED_DLQ, physical_topic
from workers.kafka.clients import admin_config


def ensure_topics(timeout: float = 30.0) -> list[str]:
    """Create every topic that is missing; returns the physical names."""
    admin = AdminClient(admin_config())
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = {physical_topic(t): t for t in ALL_TOPICS}
    new = []
    for name, logical in wanted.items():
        if name in existing:
            continue
        retention = settings.KAFKA_TOPIC_RETENTION_MS
        if logical == ASSESSMENT_COMPLETED_DLQ:
            retention = max(retention, 30 * 24 * 3600 * 1000)  # people read DLQs late
        new.append(
            NewTopic(
                name,
                num_partitions=settings.KAFKA_TOPIC_PARTITIONS,
                replication_factor=1,
                config={"retention.ms": str(retention)},
            )
        )
    if new:
        for future in admin.create_topics(new, operation_timeout=timeout).values():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    return sorted(wanted)
