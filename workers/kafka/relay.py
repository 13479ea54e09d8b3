"""Outbox relay: publishes ``EventOutbox`` rows to Kafka and deletes them once acknowledged.

Rows are read in id order under a PostgreSQL advisory lock, so one relay at a time
publishes (several bridge replicas can run; the others wait) and events of one job
keep their order (same key, same partition, idempotent producer). A row is deleted
only after Kafka acknowledged it, in the transaction holding the lock, so the outbox
is a queue of what is still to send; while Kafka is down rows wait (their attempts
and last error visible in the admin), and the relay retries with exponential backoff.
If the process dies between the ack and the commit, the rows are sent again:
at-least-once, like every Kafka consumer of these topics must expect.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Optional

from confluent_kafka import KafkaError, KafkaException, Message
from django.db import close_old_connections, connection, transaction
from django.db.models import F

from simulations.events import physical_topic
from simulations.models import EventOutbox
from workers import metrics
from workers.kafka.clients import process_producer

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "montecarlo outbox relay"
RELAY_LOCK_KEY = 0x6D6F6E7465636172


class OutboxRelay:
    def __init__(self, *, stop: threading.Event, batch_size: int = 500, idle_wait: float = 0.5,
                 max_backoff: float = 30.0, flush_timeout: float = 40.0):
        self.stop = stop
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.max_backoff = max_backoff
        self.flush_timeout = flush_timeout

    def run(self) -> None:
        backoff = 0.0
        try:
            while not self.stop.is_set():
                close_old_connections()
                try:
                    sent = self.relay_once()
                except Exception as exc:  # Kafka or the database is down: wait and retry
                    backoff = min(max(0.5, backoff * 2), self.max_backoff)
                    metrics.KAFKA_ERRORS.labels(stage="relay").inc()
                    logger.warning("outbox relay retrying in %.1fs: %s", backoff, exc)
                    self.stop.wait(backoff)
                    continue
                backoff = 0.0
                if sent == 0:
                    self.stop.wait(self.idle_wait)
        finally:
            connection.close()

    def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many Kafka acknowledged."""
        with transaction.atomic():
            if not self._lock():
                return 0
            rows = list(EventOutbox.objects.order_by("id")[: self.batch_size])
            metrics.OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            results = self._publish(rows)
            delivered = [row for row in rows if row.id in results and results[row.id] is None]
            failed = {rid: err for rid, err in results.items() if err is not None}
            missing = [row.id for row in rows if row.id not in results]
            if delivered:
                EventOutbox.objects.filter(id__in=[row.id for row in delivered]).delete()
                for row in delivered:
                    metrics.OUTBOX_PUBLISHED.labels(topic=row.topic).inc()
            for rid in list(failed) + missing:
                EventOutbox.objects.filter(id=rid).update(
                    attempts=F("attempts") + 1, last_error=str(failed.get(rid, "no delivery report"))[:1000])
        if missing or not delivered:
            # Kafka is away (or refused everything): back off before trying again
            raise RuntimeError(f"{len(failed) + len(missing)} of {len(rows)} events not acknowledged by Kafka")
        if failed:
            # Refused one by one while the rest went through: keep them (admin, "failing")
            # and go on, so one bad event does not hold back everyone else's.
            metrics.KAFKA_ERRORS.labels(stage="relay").inc(len(failed))
            logger.error("%d outbox events refused by Kafka, kept for retry: %s", len(failed),
                         "; ".join(f"#{rid}: {err}" for rid, err in list(failed.items())[:5]))
        return len(delivered)

    def _lock(self) -> bool:
        if connection.vendor != "postgresql":
            return True  # single-process SQLite setups
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
            return bool(cursor.fetchone()[0])

    def _publish(self, rows: list[EventOutbox]) -> dict[int, Optional[KafkaError]]:
        producer = process_producer()
        results: dict[int, Optional[KafkaError]] = {}

        def report(row_id: int):  # type: ignore[no-untyped-def]
            def delivered(err: Optional[KafkaError], _: Message) -> None:
                results[row_id] = err
            return delivered

        for row in rows:
            try:
                producer.produce(
                    physical_topic(row.topic), key=row.key.encode(), value=json.dumps(row.payload).encode(),
                    headers=[("event-id", str(row.id).encode()), ("job-id", str(row.job_id).encode())],
                    on_delivery=report(row.id),
                )
            except KafkaException as exc:  # refused before sending, e.g. above message.max.bytes
                results[row.id] = exc.args[0]
            producer.poll(0)
        # every message gets a final report within message.timeout.ms: nothing lingers
        producer.flush(self.flush_timeout)
        return results
