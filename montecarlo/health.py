"""Liveness (``/health``) and readiness (``/ready``) of the web process.

Readiness names what is down: the database, the broker and, when configured, Kafka.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

CHECK_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
        conn.default_channel.client.ping()


def check_kafka() -> None:
    from confluent_kafka.admin import AdminClient

    from workers.kafka.clients import admin_config

    admin = AdminClient(admin_config(**{"socket.timeout.ms": 2000}))
    admin.list_topics(timeout=CHECK_TIMEOUT_SECONDS)


def readiness_checks() -> dict[str, Callable[[], None]]:
    checks = {"database": check_database, "broker": check_broker}
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        checks["kafka"] = check_kafka
    return checks


class HealthApi(APIView):
    authentication_classes: list[type] = []  # probes are open: no key, no host names in the body
    permission_classes: list[type] = []
    throttle_classes: list[type] = []

    @extend_schema(operation_id="health", responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyApi(APIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []

    @extend_schema(operation_id="ready", responses={200: dict, 503: dict})
    def get(self, request: Request) -> Response:
        results: dict[str, str] = {}
        for name, check in readiness_checks().items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure means "not ready", with the reason
                # the kind of failure only: messages name hosts and ports, and the probe is open
                results[name] = f"down: {exc.__class__.__name__}"
        down = [name for name, state in results.items() if state != "ok"]
        body = {"status": "unavailable" if down else "ready", "checks": results}
        if down:
            body["down"] = down
        return Response(body, status=503 if down else 200)
