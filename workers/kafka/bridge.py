"""The ``assessment.completed`` consumer: events in, jobs out, at least once.

Per poll batch: parse and validate each message (``schemas``), create their jobs
through ``services.create_jobs_for_completed_assessments`` (one transaction,
idempotent, enqueued after commit), and only then store the offsets; the background commit sends
stored offsets, ``close()`` the last ones. A message that cannot be parsed or
validated is copied to the DLQ with the reason, and its offset is stored only once
Kafka confirmed the copy. Any other failure (database or broker down) rewinds the
partitions to the batch's first message and retries with backoff, so nothing is skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from django.db import close_old_connections
from django.utils import timezone

from simulations import log_context, metrics, services
from simulations.errors import InvalidInput
from simulations.events import ASSESSMENT_COMPLETED, ASSESSMENT_COMPLETED_DLQ, physical_topic
from workers.kafka.clients import kafka_errors_log, new_consumer, producer_config
from workers.kafka.liveness import Liveness
from workers.kafka.schemas import AssessmentCompleted, InvalidEvent
from workers.kafka.tail import recent_headers

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """Processing failed for a reason that should pass (a dependency is down)."""


class AssessmentCompletedBridge:
    """Consumes ``assessment.completed`` in a consumer group until ``stop`` is set."""

    def __init__(
        self,
        *,
        group_id: str,
        stop: threading.Event,
        batch_size: int = 100,
        poll_timeout: float = 1.0,
        max_backoff: float = 30.0,
        liveness: Liveness | None = None,
    ):
        self.liveness = liveness
        self.topic = physical_topic(ASSESSMENT_COMPLETED)
        self.dlq_topic = physical_topic(ASSESSMENT_COMPLETED_DLQ)
        self.stop = stop
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.max_backoff = max_backoff
        self.consumer = new_consumer(group_id, stats_cb=self._on_stats)
        self.dlq = Producer(producer_config())
        self.already_dead_lettered = self._recent_dlq_copies()

    def run(self) -> None:
        self.consumer.subscribe([self.topic], on_revoke=self._on_revoke, on_lost=self._on_lost)
        backoff = 0.5
        while not self.stop.is_set():
            messages = self.consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout)
            metrics.BRIDGE_LAST_POLL.set_to_current_time()
            if self.liveness is not None:
                self.liveness.beat("consumer")
            if not messages:
                continue
            close_old_connections()  # a long-lived process: never use a dead connection
            try:
                self._handle_batch(messages)
                if backoff > 0.5:
                    logger.info("consuming again")
                backoff = 0.5
            except RetryLater as exc:
                metrics.KAFKA_ERRORS.labels(stage="consume").inc()
                kafka_errors_log.warning("batch will be retried in %.1fs: %s", backoff, exc.__cause__ or exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def close(self, timeout: float) -> None:
        """Leave the group cleanly (committing stored offsets), bounded by ``timeout``."""
        closer = threading.Thread(target=self.consumer.close, daemon=True)
        closer.start()
        closer.join(timeout)
        if closer.is_alive():
            logger.error("consumer close did not finish in %.0fs; leaving anyway", timeout)
        self.dlq.flush(min(timeout, 5.0))

    def _handle_batch(self, messages: list[Message]) -> None:
        """The poll batch at once: its jobs created in one transaction and enqueued, bad
        messages dead-lettered (confirmed), and only then every offset stored. Any
        failure rewinds the whole batch; creating its jobs again changes nothing."""
        good: list[int] = []  # indexes in messages
        parsed: list[services.CompletedAssessment] = []
        rejected: dict[int, str] = {}  # index in messages -> DLQ reason
        for i, msg in enumerate(messages):
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                kafka_errors_log.warning("consumer error: %s", error)
                continue
            try:
                event = AssessmentCompleted.parse(msg.value())
            except InvalidEvent as exc:
                rejected[i] = str(exc)
                continue
            good.append(i)
            parsed.append(
                services.CompletedAssessment(
                    event.assessment_id,
                    event.funded_account_id,
                    event.config,
                    request_id=_request_id(msg),
                    rule_set=event.rule_set,
                )
            )
        try:
            outcomes = services.create_jobs_for_completed_assessments(parsed) if parsed else []
            for i, outcome in zip(good, outcomes):
                if isinstance(outcome, InvalidInput):
                    rejected[i] = f"invalid: {outcome}"
            for i in sorted(rejected):
                self._dead_letter(messages[i], rejected[i])
            for msg in messages:
                if msg.error() is None:
                    self.consumer.store_offsets(message=msg)
        except Exception as exc:
            self._rewind(messages)
            raise RetryLater(str(exc)) from exc
        metrics.KAFKA_EVENTS.labels(result="job").inc(
            len(outcomes) - sum(isinstance(o, InvalidInput) for o in outcomes)
        )

    def _recent_dlq_copies(self) -> set[tuple[bytes, bytes, bytes]]:
        """Where the DLQ's latest copies came from: a bridge killed after a copy was
        acknowledged but before its offset was committed (every second) meets the same
        bad message again, and must not copy it twice. Its tail of one poll batch per
        partition covers that; if it cannot be read, a copy may repeat (at-least-once)."""
        try:
            copies = recent_headers([self.dlq_topic], tail=self.batch_size, timeout=15.0)
        except Exception as exc:
            kafka_errors_log.warning("the DLQ's latest copies not read (%s): a bad event may be copied twice", exc)
            return set()
        return {_origin(headers) for headers in copies}

    def _dead_letter(self, msg: Message, reason: str) -> None:
        """Copy the original bytes to the DLQ with the reason, and wait for Kafka's ack;
        a message this bridge's start found copied already is not copied again."""
        origin = (msg.topic().encode(), str(msg.partition()).encode(), str(msg.offset()).encode())
        if origin in self.already_dead_lettered:
            logger.info("%s[%s]@%s is in the DLQ already", msg.topic(), msg.partition(), msg.offset())
            return
        outcome: dict[str, Any] = {}

        def delivered(err: KafkaError | None, _: Message) -> None:
            outcome["error"] = err

        request_id = _request_id(msg)
        headers = [
            (log_context.KAFKA_HEADER, request_id.encode()),
            ("dlq.reason", reason.encode()),
            ("dlq.original.topic", msg.topic().encode()),
            ("dlq.original.partition", str(msg.partition()).encode()),
            ("dlq.original.offset", str(msg.offset()).encode()),
            ("dlq.failed.at", timezone.now().isoformat().encode()),
        ]
        self.dlq.produce(self.dlq_topic, key=msg.key(), value=msg.value(), headers=headers, on_delivery=delivered)
        self.dlq.flush(30)
        if "error" not in outcome or outcome["error"] is not None:
            raise RuntimeError(f"DLQ copy not confirmed: {outcome.get('error', 'timeout')}")
        metrics.KAFKA_EVENTS.labels(result="dlq").inc()
        with log_context.bound_contextvars(request_id=request_id):
            logger.info("dead-lettered %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), reason)

    def _rewind(self, messages: list[Message]) -> None:
        """Seek each partition back to its first message not yet handled."""
        first: dict[tuple[str, int], int] = {}
        for msg in messages:
            if msg.error() is None:
                first.setdefault((msg.topic(), msg.partition()), msg.offset())
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # partition revoked meanwhile: its new owner resumes
                logger.warning("cannot rewind %s[%s]: %s", topic, partition, exc)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        try:
            consumer.commit(asynchronous=False)  # hand over what we finished
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                logger.warning("commit on revoke failed: %s", exc)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # never commit here: the partitions may already belong to someone else
        logger.warning("partitions lost: %s", [p.partition for p in partitions])

    def _on_stats(self, raw: str) -> None:
        stats = json.loads(raw)
        for topic, data in stats.get("topics", {}).items():
            for partition, p in data.get("partitions", {}).items():
                if partition != "-1" and p.get("consumer_lag", -1) >= 0:
                    metrics.KAFKA_CONSUMER_LAG.labels(topic=topic, partition=partition).set(p["consumer_lag"])


def _request_id(msg: Message) -> str:
    """The event's ``request-id`` header when the producer set a plain one, else one
    made from where the message lies, so a redelivery and its DLQ copy get the same."""
    for name, value in msg.headers() or []:
        if name == log_context.KAFKA_HEADER and (clean := log_context.clean_request_id(value)):
            return clean
    return f"kafka:{msg.topic()}:{msg.partition()}:{msg.offset()}"[-log_context.MAX_LENGTH :]


def _origin(headers: dict[str, bytes]) -> tuple[bytes, bytes, bytes]:
    """A DLQ copy's identity: the topic, partition and offset it was copied from."""
    return (
        headers.get("dlq.original.topic", b""),
        headers.get("dlq.original.partition", b""),
        headers.get("dlq.original.offset", b""),
    )
