"""``GET /workers``: live workers, from their heartbeats."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from simulations.errors import DependencyUnavailable
from simulations.models import Scope
from workers.heartbeat import live_workers


class WorkerOutput(serializers.Serializer):
    worker_id = serializers.CharField()
    worker_name = serializers.CharField()
    timestamp = serializers.FloatField()
    status = serializers.ChoiceField(choices=["idle", "processing"])
    tasks_processed = serializers.IntegerField()
    tasks_failed = serializers.IntegerField()
    uptime_seconds = serializers.FloatField()
    current_task_id = serializers.CharField(allow_null=True)
    heartbeat_interval = serializers.FloatField()
    heartbeat_ttl = serializers.IntegerField()


class WorkerListOutput(serializers.Serializer):
    workers = WorkerOutput(many=True)


class WorkerListApi(APIView):
    scopes = {"GET": Scope.OPERATE}

    @extend_schema(
        operation_id="workers_list",
        responses={
            200: WorkerListOutput,
            401: OpenApiResponse(description="no API key, or an unknown, revoked or expired one"),
            403: OpenApiResponse(description="the key's client lacks the operate scope"),
            429: OpenApiResponse(description="above the client's request rate (API_RATE_LIMIT, with Retry-After)"),
            503: OpenApiResponse(description="the heartbeat store is unreachable"),
        },
    )
    def get(self, request: Request) -> Response:
        try:
            workers = live_workers()
        except Exception as exc:
            raise DependencyUnavailable(f"heartbeat store unreachable: {exc}") from exc
        return Response(WorkerListOutput({"workers": workers}).data)
