"""Celery queues, by kind of work: CPU-bound simulations apart from light upkeep."""

from __future__ import annotations

from enum import Enum


class CeleryQueue(str, Enum):
    SIMULATIONS = "simulations"
    MAINTENANCE = "maintenance"


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue, as the broker's transport counts them (for Redis,
    every priority list of the queue): what ``montecarlo_queue_length`` reports."""
    from celery import current_app
    from kombu.exceptions import ChannelError

    lengths = {}
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in CeleryQueue:
            try:
                lengths[queue.value] = channel.queue_declare(queue=queue.value, passive=True).message_count
            except ChannelError:  # Redis deletes an empty list: "no such queue" is an empty one
                lengths[queue.value] = 0
    return lengths
