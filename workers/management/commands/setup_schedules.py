"""Create or update the beat schedules after settings changed (migrations create them once)."""

from typing import Any

from django.core.management.base import BaseCommand

from workers.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update the periodic tasks that celery-beat runs."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ensure_schedules():
            self.stdout.write(f"schedule ok: {name}")
