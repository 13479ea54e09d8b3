"""Kafka: empty bootstrap servers switch the event bus off (quick start, unit runs)."""

from __future__ import annotations

from .env import env

KAFKA_BOOTSTRAP_SERVERS = env.str("KAFKA_BOOTSTRAP_SERVERS", default="")
KAFKA_CONSUMER_GROUP = env.str("KAFKA_CONSUMER_GROUP", default="montecarlo-bridge")
KAFKA_TOPIC_PARTITIONS = env.int("KAFKA_TOPIC_PARTITIONS", default=3)
KAFKA_TOPIC_RETENTION_MS = env.int("KAFKA_TOPIC_RETENTION_MS", default=7 * 24 * 3600 * 1000)
