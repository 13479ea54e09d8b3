"""Metrics read from elsewhere at each scrape: queue lengths from the real Redis broker,
scheduled tasks' last successes from the real keys Redis; a store that cannot be read
costs its samples, never the scrape."""

from __future__ import annotations

from celery import current_app
from prometheus_client import CollectorRegistry, generate_latest

from simulations import metrics
from simulations.keys_redis import keys_redis
from workers import last_success
from workers.queues import CeleryQueue, queue_lengths


def scrape(*collectors) -> str:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def test_queue_lengths_count_the_messages_waiting_on_the_broker():
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(CeleryQueue.MAINTENANCE.value)
    assert queue_lengths()[CeleryQueue.MAINTENANCE.value] == 0  # an empty queue has no list in Redis
    before = queue_lengths()[CeleryQueue.SIMULATIONS.value]
    for i in range(3):
        current_app.send_task("montecarlo.no_such_task", args=(i,), queue=CeleryQueue.SIMULATIONS.value)
    current_app.send_task("montecarlo.no_such_task", queue=CeleryQueue.MAINTENANCE.value)
    lengths = queue_lengths()
    assert lengths[CeleryQueue.SIMULATIONS.value] == before + 3
    assert lengths[CeleryQueue.MAINTENANCE.value] == 1
    text = scrape(metrics.queue_lengths(queue_lengths))
    assert 'montecarlo_queue_length{queue="maintenance"} 1.0' in text
    with current_app.connection_for_write() as connection:
        for queue in CeleryQueue:
            connection.default_channel.queue_purge(queue.value)


def test_last_successes_survive_the_process_and_are_read_at_scrape():
    keys_redis().delete(last_success.KEY)
    assert "montecarlo_task_last_success_timestamp_seconds{" not in scrape(metrics.last_successes(last_success.read))
    last_success.mark(last_success.SWEEP)
    seen = last_success.read()
    assert set(seen) == {"sweep"} and seen["sweep"] > 1.7e9
    assert 'montecarlo_task_last_success_timestamp_seconds{task="sweep"}' in scrape(
        metrics.last_successes(last_success.read)
    )


def test_a_store_that_cannot_be_read_gives_no_samples_but_the_scrape_answers(caplog):
    def broken() -> dict[str, float]:
        raise ConnectionError("broker away")

    text = scrape(metrics.queue_lengths(broken), metrics.last_successes(lambda: {"sweep": 5.0}))
    assert "montecarlo_queue_length{" not in text and "# TYPE montecarlo_queue_length gauge" in text
    assert 'montecarlo_task_last_success_timestamp_seconds{task="sweep"} 5.0' in text
    assert "montecarlo_queue_length not read: broker away" in caplog.text
