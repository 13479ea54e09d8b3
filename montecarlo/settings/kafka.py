"""Kafka: empty bootstrap servers switch the event bus off (quick start, unit runs)."""

from __future__ import annotations

from .env import env

KAFKA_BOOTSTRAP_SERVERS = env.str("KAFKA_BOOTSTRAP_SERVERS", default="")
KAFKA_CONSUMER_GROUP = env.str("KAFKA_CONSUMER_GROUP", default="montecarlo-bridge")
# A bridge that dies without leaving the group holds its partitions this long (ms): short,
# since librdkafka heartbeats from its own thread, so a busy loop never misses one.
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=10_000)
# Static group membership (empty: off): a bridge restarted with the same id within the
# session timeout takes its partitions back without a rebalance, but a static member
# does not leave the group when it stops, so its partitions wait out the session timeout
# on a rollout that renames it (docs/reliability.md).
KAFKA_GROUP_INSTANCE_ID = env.str("KAFKA_GROUP_INSTANCE_ID", default="")
# TLS and SASL, passed to librdkafka as they are (empty: not set, PLAINTEXT)
KAFKA_SECURITY = {
    "security.protocol": env.str("KAFKA_SECURITY_PROTOCOL", default=""),
    "sasl.mechanism": env.str("KAFKA_SASL_MECHANISM", default=""),
    "sasl.username": env.str("KAFKA_SASL_USERNAME", default=""),
    "sasl.password": env.str("KAFKA_SASL_PASSWORD", default=""),
    "ssl.ca.location": env.str("KAFKA_SSL_CA_LOCATION", default=""),
}
KAFKA_TOPIC_PARTITIONS = env.int("KAFKA_TOPIC_PARTITIONS", default=3)
KAFKA_TOPIC_RETENTION_MS = env.int("KAFKA_TOPIC_RETENTION_MS", default=7 * 24 * 3600 * 1000)
# Prefix of every topic name, for several environments on one cluster.
KAFKA_TOPIC_PREFIX = env.str("KAFKA_TOPIC_PREFIX", default="")
# Messages handled per poll, and how long a poll waits (seconds).
KAFKA_BATCH_SIZE = env.int("KAFKA_BATCH_SIZE", default=100)
KAFKA_POLL_TIMEOUT = env.float("KAFKA_POLL_TIMEOUT", default=1.0)
# Outbox relay: rows per batch, idle wait, and backoff cap while Kafka is down (seconds).
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=500)
OUTBOX_IDLE_WAIT = env.float("OUTBOX_IDLE_WAIT", default=0.5)
OUTBOX_MAX_BACKOFF = env.float("OUTBOX_MAX_BACKOFF", default=30.0)
# An event Kafka refused for what it is waits 1 s, 2 s, 4 s ... at most this (seconds).
OUTBOX_MAX_REFUSED_BACKOFF = env.float("OUTBOX_MAX_REFUSED_BACKOFF", default=600.0)
# The bridge's own /metrics (Prometheus) port; 0 switches it off.
BRIDGE_METRICS_PORT = env.int("BRIDGE_METRICS_PORT", default=9108)
# SIGTERM: how long the bridge may take to finish its batch and leave the group.
BRIDGE_SHUTDOWN_GRACE = env.float("BRIDGE_SHUTDOWN_GRACE", default=20.0)
# BRIDGE_LIVENESS_DIR and BRIDGE_LIVENESS_MAX_AGE are read by workers/kafka/liveness.py
# itself: its probe runs without Django.
# How long the producer keeps retrying one message before reporting it failed (ms).
KAFKA_MESSAGE_TIMEOUT_MS = env.int("KAFKA_MESSAGE_TIMEOUT_MS", default=30_000)
