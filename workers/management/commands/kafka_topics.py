"""Create the project's Kafka topics (partitions and retention from settings)."""

from typing import Any

from django.core.management.base import BaseCommand

from workers.kafka.topics import ensure_topics


class Command(BaseCommand):
    help = "Create missing Kafka topics."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ensure_topics():
            self.stdout.write(f"topic ok: {name}")
