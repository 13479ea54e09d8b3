"""Every beat entry, in one place, with its cadence and reason.

Stored in django-celery-beat's DatabaseScheduler tables by ``ensure_schedules()``
(run by a migration and by ``manage.py setup_schedules``), so operators can see and
pause them in the admin. Run exactly one beat process: DatabaseScheduler has no lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings

from simulations import task_names
from workers.queues import CeleryQueue

SWEEP_TASK_NAME = "requeue running jobs of dead workers"
DAILY_TASK_NAME = "daily funded-account simulations"
BOOK_TASK_NAME = "book reports of the daily runs"


def ensure_schedules(get_model: Callable[[str, str], Any] | None = None) -> list[str]:
    """Create or update the periodic tasks; returns their names.

    ``get_model`` is a migration's ``apps.get_model``; by default the live models.
    """
    if get_model is None:
        from django.apps import apps

        get_model = apps.get_model
    IntervalSchedule = get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = get_model("django_celery_beat", "PeriodicTask")

    names = []
    # Every STALE_JOB_SWEEP_INTERVAL seconds (30): a dead worker's job waits at most
    # heartbeat TTL + this interval before it is requeued.
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.STALE_JOB_SWEEP_INTERVAL, period="seconds")
    _upsert(
        PeriodicTask,
        SWEEP_TASK_NAME,
        task=task_names.SWEEP_STALE_JOBS,
        interval=every,
        crontab=None,
        queue=CeleryQueue.MAINTENANCE.value,
        expire_seconds=settings.STALE_JOB_SWEEP_INTERVAL,
    )
    names.append(SWEEP_TASK_NAME)

    # Daily at DAILY_FUNDED_RUN_TIME UTC (02:00): one task that fans out over every
    # active funded account (a schedule row per account makes beat slow and racy).
    # The crontab carries its own explicit timezone; the message expires after 6 h
    # so a beat that was down does not fire a stale run late.
    hour, minute = (int(part) for part in settings.DAILY_FUNDED_RUN_TIME.split(":"))
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    _upsert(
        PeriodicTask,
        DAILY_TASK_NAME,
        task=task_names.SCHEDULE_DAILY_FUNDED_RUNS,
        crontab=daily,
        interval=None,
        queue=CeleryQueue.MAINTENANCE.value,
        expire_seconds=6 * 3600,
    )
    names.append(DAILY_TASK_NAME)

    # Every BOOK_REPORT_INTERVAL seconds (300): a daily run's report is rebuilt while its
    # jobs finish, so it is whole within this long of the last one.
    book_every, _ = IntervalSchedule.objects.get_or_create(every=settings.BOOK_REPORT_INTERVAL, period="seconds")
    _upsert(
        PeriodicTask,
        BOOK_TASK_NAME,
        task=task_names.BUILD_BOOK_REPORTS,
        interval=book_every,
        crontab=None,
        queue=CeleryQueue.MAINTENANCE.value,
        expire_seconds=settings.BOOK_REPORT_INTERVAL,
    )
    names.append(BOOK_TASK_NAME)
    return names


def _upsert(model: Any, name: str, **fields: Any) -> None:
    fields.setdefault("kwargs", json.dumps({}))
    obj, created = model.objects.get_or_create(name=name, defaults=fields)
    if not created:
        for key, value in fields.items():
            setattr(obj, key, value)
        obj.save()
