"""Liveness probe of a worker pod: exit 0 only if this host's worker is really alive.

A worker can keep its process alive yet stop consuming after a broker reconnect
(celery#8030), so a PID check is not enough. Alive means both:
- a worker process on this host wrote its heartbeat recently, and
- the worker answers a ``ping`` through the broker (the same connection it consumes on).
"""

from __future__ import annotations

import socket
from typing import Any

from celery import current_app as app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.heartbeat import own_heartbeats


class Command(BaseCommand):
    help = "Exit 0 if this host's Celery worker is heartbeating and answers a ping; else exit 1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", help="worker node name (default: every node on this host)")
        parser.add_argument("--timeout", type=float, default=5.0)

    def handle(self, *args: Any, **opts: Any) -> None:
        max_age = 2 * settings.WORKER_HEARTBEAT_INTERVAL + 1
        beats = own_heartbeats(max_age)
        if opts["node"]:
            beats = [b for b in beats if b["worker_name"] == opts["node"]]
        if not beats:
            raise CommandError(f"no heartbeat from a worker process on {socket.gethostname()} in {max_age:.0f}s")
        nodes = [opts["node"]] if opts["node"] else sorted({b["worker_name"] for b in beats})
        replies = app.control.ping(destination=nodes, timeout=opts["timeout"]) or []
        answered = {name for reply in replies for name in reply}
        missing = [n for n in nodes if n not in answered]
        if missing:
            raise CommandError(f"worker(s) {', '.join(missing)} heartbeat but do not answer through the broker")
        self.stdout.write(f"alive: {', '.join(nodes)} ({len(beats)} processes)")
