"""Outbox relay: publishes ``EventOutbox`` rows to Kafka and deletes them once acknowledged.

Rows are read in id order under a PostgreSQL advisory lock, so one relay at a time
publishes (several bridge replicas can run; the others wait) and events of one job
keep their order (same key, same partition, idempotent producer). A row is deleted
only after Kafka acknowledged it, in the transaction holding the lock, so the outbox
is a queue of what is still to send; while Kafka is down rows wait (their attempts
and last error visible in the admin), and the relay retries with exponential backoff.
If the process dies between the ack and the commit, those rows would be sent again;
so before its first pass a relay reads the last ``batch_size`` messages of every
partition it writes and deletes the rows whose ``event-id`` Kafka already holds
(``forget_published``). What is left is at-least-once for what no scan can see (the
scan failing, a partition's tail longer than a pass), as every consumer must expect.

An event Kafka refuses for what it is (too large, a topic it may not write) would be
refused again at once, so that row alone is put off (``next_attempt_at``, doubling up
to ``max_refused_backoff``) and the events behind it go on: neither a retry every pass
nor a batch of refused events at the head of the queue holds back the rest. Errors of
Kafka being away (timeouts, transport) put nothing off: those rows stay first in line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import defaultdict
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message
from django.db import close_old_connections, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from simulations import log_context, metrics
from simulations.events import OUTBOX_TOPICS, physical_topic
from simulations.models import EventOutbox, SimulationJob
from workers.kafka.clients import kafka_errors_log, process_producer
from workers.kafka.liveness import Liveness
from workers.kafka.tail import recent_headers

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "montecarlo outbox relay"
RELAY_LOCK_KEY = 0x6D6F6E7465636172

# Delivery errors about the message itself, not about reaching Kafka: sent again it
# would be refused again. (Anything refused at produce() is such an error too.)
REFUSED_FOR_WHAT_IT_IS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.POLICY_VIOLATION,
    }
)


class Refused:
    """An event librdkafka refused at ``produce()``, before anything was sent."""

    def __init__(self, error: KafkaError):
        self.error = error

    def __str__(self) -> str:
        return str(self.error)


Outcome = None | KafkaError | Refused  # None: acknowledged
NO_REPORT = "no delivery report"  # the outcome of a row librdkafka did not report on in time


class RelayPass(NamedTuple):
    """What one pass did with the rows that were due."""

    due: int
    delivered: int
    put_off: int


class OutboxRelay:
    def __init__(
        self,
        *,
        stop: threading.Event,
        batch_size: int = 500,
        idle_wait: float = 0.5,
        max_backoff: float = 30.0,
        flush_timeout: float = 40.0,
        first_refused_backoff: float = 1.0,
        max_refused_backoff: float = 600.0,
        liveness: Liveness | None = None,
    ):
        self.liveness = liveness
        self.stop = stop
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.max_backoff = max_backoff
        self.flush_timeout = flush_timeout
        self.first_refused_backoff = first_refused_backoff
        self.max_refused_backoff = max_refused_backoff

    def run(self) -> None:
        backoff = 0.0
        self.forget_published()
        try:
            while not self.stop.is_set():
                if self.liveness is not None:
                    self.liveness.beat("relay")
                close_old_connections()
                try:
                    done = self.relay_once()
                except Exception as exc:  # Kafka or the database is down: wait and retry
                    backoff = min(max(0.5, backoff * 2), self.max_backoff)
                    metrics.KAFKA_ERRORS.labels(stage="relay").inc()
                    kafka_errors_log.warning("outbox relay retrying in %.1fs: %s", backoff, exc)
                    self.stop.wait(backoff)
                    continue
                if backoff:
                    logger.info("outbox relay publishing again")
                backoff = 0.0
                if done.due == 0:  # a pass whose rows were all put off goes straight on
                    self.stop.wait(self.idle_wait)
        finally:
            connection.close()

    def forget_published(self, timeout: float = 15.0) -> int:
        """Delete the outbox rows Kafka already has: a relay that died between Kafka's
        acknowledgement and the delete's commit left at most one pass of them, and each
        is among the last ``batch_size`` messages of its partition. Returns how many were
        deleted; on any error (Kafka away, a timeout) it deletes nothing and the rows are
        sent again, as at-least-once allows."""
        try:
            if not EventOutbox.objects.exists():
                return 0
            published = published_event_ids(
                [physical_topic(t) for t in OUTBOX_TOPICS], tail=self.batch_size, timeout=timeout
            )
            deleted, _ = EventOutbox.objects.filter(id__in=published).delete()
        except Exception as exc:  # a best effort (Kafka or the database away): duplicates are allowed, loss is not
            kafka_errors_log.warning("outbox rows already in Kafka not looked up (%s): they may be sent twice", exc)
            return 0
        if deleted:
            logger.info("%d outbox events were already in Kafka (a relay stopped before deleting them)", deleted)
        return deleted

    def relay_once(self) -> RelayPass:
        """Publish one batch of due rows; raises if Kafka is away."""
        with transaction.atomic():
            if not self._lock():
                return RelayPass(0, 0, 0)
            due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
            rows = list(
                EventOutbox.objects.filter(due)
                .annotate(request_id=Subquery(SimulationJob.objects.filter(pk=OuterRef("job_id")).values("request_id")))
                .order_by("id")[: self.batch_size]
            )
            metrics.OUTBOX_PENDING.set(len(rows))
            if not rows:
                return RelayPass(0, 0, 0)
            outcomes = self._publish(rows)
            delivered, refused, away = [], [], []  # away: not acknowledged for want of Kafka
            for row in rows:
                outcome = outcomes.get(row.id, NO_REPORT)
                if outcome is None:
                    delivered.append(row)
                else:
                    (refused if _refused_for_what_it_is(outcome) else away).append(row)
            if delivered:
                EventOutbox.objects.filter(id__in=[row.id for row in delivered]).delete()
                for row in delivered:
                    metrics.OUTBOX_PUBLISHED.labels(topic=row.topic).inc()
                    if logger.isEnabledFor(logging.DEBUG):  # one line per event: on when asked (LOG_LEVELS)
                        with log_context.bound_contextvars(request_id=row.request_id, job_id=str(row.job_id)):
                            logger.debug("published %s event #%s", row.topic, row.id)
            self._record_failures(refused, away, outcomes)
        if any(row.id not in outcomes for row in rows) or (away and not delivered):
            # Kafka is away: back off before trying again
            raise RuntimeError(f"{len(away)} of {len(rows)} events not acknowledged by Kafka")
        if away:  # some went through: these stay first in line for the next pass
            logger.warning(
                "%d outbox events not acknowledged, kept for the next pass: %s",
                len(away),
                "; ".join(f"#{row.id}: {outcomes[row.id]}" for row in away[:5]),
            )
        if refused:
            for row in refused:
                metrics.OUTBOX_REFUSED.labels(topic=row.topic).inc()
            logger.error(
                "%d outbox events refused by Kafka, put off and kept for retry: %s",
                len(refused),
                "; ".join(f"#{row.id}: {outcomes[row.id]}" for row in refused[:5]),
            )
        return RelayPass(due=len(rows), delivered=len(delivered), put_off=len(refused))

    def _record_failures(
        self, refused: list[EventOutbox], away: list[EventOutbox], outcomes: dict[int, Outcome]
    ) -> None:
        """One more attempt and Kafka's error on each row; refused rows are put off.
        Rows that share an error and a wait share one UPDATE: while Kafka is down the
        whole batch fails alike, and that is one statement, not one per event."""
        reported_at = timezone.now()  # the wait counts from the refusal, not from the read
        groups: dict[tuple[str, dt.datetime | None], list[int]] = defaultdict(list)
        for row in refused:
            later = reported_at + self._refused_backoff(row.attempts + 1)
            groups[str(outcomes[row.id])[:1000], later].append(row.id)
        for row in away:
            groups[str(outcomes.get(row.id, NO_REPORT))[:1000], None].append(row.id)
        for (error, later), ids in groups.items():
            EventOutbox.objects.filter(id__in=ids).update(
                attempts=F("attempts") + 1, last_error=error, next_attempt_at=later
            )

    def _refused_backoff(self, attempts: int) -> dt.timedelta:
        """``first_refused_backoff`` after the first refusal, doubling, at most ``max_refused_backoff``."""
        return dt.timedelta(
            seconds=min(self.first_refused_backoff * 2.0 ** min(attempts - 1, 30), self.max_refused_backoff)
        )

    def _lock(self) -> bool:
        if connection.vendor != "postgresql":
            return True  # single-process SQLite setups
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
            return bool(cursor.fetchone()[0])

    def _publish(self, rows: list[EventOutbox]) -> dict[int, Outcome]:
        """Each row's outcome; a row without one got no delivery report in time."""
        producer = process_producer()
        results: dict[int, Outcome] = {}

        def report(row_id: int):  # type: ignore[no-untyped-def]
            def delivered(err: KafkaError | None, _: Message) -> None:
                results[row_id] = err

            return delivered

        for row in rows:
            try:
                producer.produce(
                    physical_topic(row.topic),
                    key=row.key.encode(),
                    value=json.dumps(row.payload).encode(),
                    headers=[
                        ("event-id", str(row.id).encode()),
                        ("job-id", str(row.job_id).encode()),
                        (log_context.KAFKA_HEADER, (row.request_id or "").encode()),
                    ],
                    on_delivery=report(row.id),
                )
            except KafkaException as exc:  # refused before sending, e.g. above message.max.bytes
                results[row.id] = Refused(exc.args[0])
            producer.poll(0)
        # every message gets a final report within message.timeout.ms: nothing lingers
        producer.flush(self.flush_timeout)
        return results


def _refused_for_what_it_is(outcome: Outcome | None) -> bool:
    if isinstance(outcome, Refused):
        return True
    return isinstance(outcome, KafkaError) and outcome.code() in REFUSED_FOR_WHAT_IT_IS


def published_event_ids(topics: list[str], *, tail: int, timeout: float) -> set[int]:
    """The ``event-id`` headers among the last ``tail`` messages of every partition of ``topics``."""
    ids = (headers.get("event-id", b"") for headers in recent_headers(topics, tail=tail, timeout=timeout))
    return {int(i) for i in ids if i.isdigit()}
