"""confluent-kafka client settings, and a producer per process.

librdkafka's threads do not survive ``fork()``, so a producer is created lazily in
the process that uses it (after any fork) and recreated if the pid changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer
from django.conf import settings

from simulations.log_context import OncePerOutage
from simulations.process import PerProcess

# librdkafka's own lines (it logs through this logger, not to stderr), and our lines about
# Kafka errors, at most once a minute per kind (librdkafka retries a lost broker every few
# milliseconds and says so each time: about 700 "Connection refused" lines in 20 s)
librdkafka_log = logging.getLogger("kafka.librdkafka")
kafka_errors_log = logging.getLogger("kafka.errors")
for _log in (librdkafka_log, kafka_errors_log):
    _log.addFilter(OncePerOutage())


def common_config() -> dict[str, Any]:
    """What every client of ours (producer, consumer, admin) shares: where the brokers
    are, how to reach them securely (the KAFKA_SECURITY_* and KAFKA_SASL_* settings),
    and where librdkafka's own lines go."""
    security = {name: value for name, value in settings.KAFKA_SECURITY.items() if value}
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "logger": librdkafka_log, **security}


def admin_config(**extra: Any) -> dict[str, Any]:
    return {**common_config(), **extra}


def producer_config() -> dict[str, Any]:
    return {
        **common_config(),
        # exactly-once per partition from the producer's side, in order
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # how long librdkafka keeps retrying one message before reporting it failed
        "message.timeout.ms": settings.KAFKA_MESSAGE_TIMEOUT_MS,
    }


def consumer_config(group_id: str, stats_cb: Callable[[str], None] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        **common_config(),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        # At-least-once: the offset of a message is stored only after its job (or its
        # DLQ copy) is safely recorded; the background commit sends stored offsets.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1_000,
        # the bridge only writes a row and enqueues, far below this
        "max.poll.interval.ms": 300_000,
        "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "statistics.interval.ms": 5_000,
    }
    if settings.KAFKA_GROUP_INSTANCE_ID:
        config["group.instance.id"] = settings.KAFKA_GROUP_INSTANCE_ID
    if stats_cb is not None:
        config["stats_cb"] = stats_cb
    return config


_producer: PerProcess[Producer] = PerProcess(lambda: Producer(producer_config()))


def process_producer() -> Producer:
    """The producer of this process, created after fork."""
    return _producer.get()


def new_consumer(group_id: str, stats_cb: Callable[[str], None] | None = None) -> Consumer:
    return Consumer(consumer_config(group_id, stats_cb))
