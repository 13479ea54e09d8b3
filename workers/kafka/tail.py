"""The end of a topic: the headers of its partitions' last messages, for a restarted
bridge to see what it had already sent (the relay's events, the DLQ's copies)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from workers.kafka.clients import consumer_config


def recent_headers(topics: list[str], *, tail: int, timeout: float) -> list[dict[str, bytes]]:
    """The headers of the last ``tail`` messages of every partition of ``topics``;
    raises if they cannot all be read within ``timeout`` seconds."""
    consumer = Consumer(
        consumer_config(f"tail-scan-{uuid.uuid4().hex}") | {"enable.auto.commit": False, "statistics.interval.ms": 0}
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        metadata = consumer.list_topics(timeout=timeout)
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
                if high > low:
                    ends[topic, partition] = high
                    assignment.append(TopicPartition(topic, partition, max(low, high - tail)))
        consumer.assign(assignment)
        found: list[dict[str, bytes]] = []
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ends)} partitions not read to their end in {timeout:.0f} s")
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error() is not None:
                    continue
                found.append(dict(msg.headers() or []))
                if msg.offset() + 1 >= ends.get((msg.topic(), msg.partition()), 0):
                    ends.pop((msg.topic(), msg.partition()), None)
        return found
    finally:
        consumer.close()
