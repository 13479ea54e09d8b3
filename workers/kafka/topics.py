"""Create the project's topics with their partitions and retention."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from simulations.events import ALL_TOPICS, ASSESSMENT_COMPLETED_DLQ, physical_topic
from workers.kafka.clients import admin_config

logger = logging.getLogger(__name__)


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


def ensure_topics_once_reachable(
    stop: threading.Event, *, waiting: Callable[[], None] = lambda: None, max_backoff: float = 30.0
) -> list[str] | None:
    """``ensure_topics``, waiting for Kafka when it is away (a bridge started during an
    outage starts when Kafka returns, instead of exiting): one line when it is found
    away, one when it answers again, none per retry; ``waiting`` is called between tries
    (the liveness beat). ``None`` if ``stop`` was set first."""
    backoff, away_since = 1.0, None
    while not stop.is_set():
        try:
            topics = ensure_topics(timeout=10.0)
        except KafkaException as exc:
            if away_since is None:
                away_since = time.monotonic()
                logger.warning("Kafka is not reachable (%s); waiting for it", exc.args[0])
            waiting()
            stop.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        if away_since is not None:
            logger.info("Kafka reachable again after %.0f s", time.monotonic() - away_since)
        return topics
    return None
