"""One place that turns errors into JSON responses: 400, 404, 409, 413, 429, 503, 500.

Body: ``{"error": <code>, "detail": <message>, "fields": {<dotted field>: [reasons]}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from simulations.engine import EngineValidationError
from simulations.errors import (
    DependencyUnavailable,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    ReportNotFound,
    WorkBudgetExceeded,
)
from simulations.wire import camel_errors

logger = logging.getLogger(__name__)


def error_body(code: str, detail: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, exceptions.Throttled):
        response = drf_exception_handler(exc, context)  # sets Retry-After
        if response is not None:
            wait = f"; retry in {exc.wait:.0f} s" if exc.wait is not None else ""
            limit = settings.API_RATE_LIMIT
            response.data = error_body(
                "throttled", f"more requests than {limit} (API_RATE_LIMIT) for this client{wait}"
            )
        return response
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _respond(413, "too_large", f"the request body is larger than {limit:,} bytes (API_MAX_BODY_BYTES)")
    if isinstance(exc, InvalidInput):
        return _respond(400, "invalid", "the request is invalid", exc.errors)
    if isinstance(exc, EngineValidationError):
        return _respond(400, "invalid", "the request is invalid", camel_errors(exc.errors))
    if isinstance(exc, exceptions.ValidationError):
        return _respond(400, "invalid", "the request is invalid", flatten(exc.detail))
    if isinstance(exc, (JobNotFound, ReportNotFound, Http404)):
        return _respond(404, "not_found", str(exc) or "not found")
    if isinstance(exc, (IdempotencyConflict, InvalidTransition)):
        return _respond(409, "conflict", str(exc))
    if isinstance(exc, WorkBudgetExceeded):
        response = _respond(429, "work_budget", str(exc))
        response.data.update(budget=exc.budget, queued=exc.queued, requested=exc.asked)
        return response
    if isinstance(exc, DependencyUnavailable):
        return _respond(503, "unavailable", str(exc))
    response = drf_exception_handler(exc, context)
    if response is not None:  # DRF's own: parse errors, 405, 415 ...
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
        response.data = error_body(_code(response.status_code), str(detail))
        return response
    logger.exception("unhandled error in %s", context.get("view"))
    return _respond(500, "server_error", "internal error")


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"config.paths": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer's errors by position
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "request"
            out.update(flatten(value, name))
    elif isinstance(detail, list) and detail and all(not isinstance(d, (dict, list)) for d in detail):
        out[prefix or "request"] = [str(d) for d in detail]
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            out.update(flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix or "request"] = [str(detail)]
    return out


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("bad_request", "the request was refused (is its Host in ALLOWED_HOSTS?)"), status=400
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", f"no resource at {request.path}"), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("server_error", "internal error"), status=500)


def _respond(code: int, name: str, detail: str, fields: dict[str, list[str]] | None = None) -> Response:
    return Response(error_body(name, detail, fields), status=code)


def _code(status_code: int) -> str:
    return {
        status.HTTP_400_BAD_REQUEST: "invalid",
        status.HTTP_401_UNAUTHORIZED: "unauthorized",
        status.HTTP_403_FORBIDDEN: "forbidden",
        status.HTTP_404_NOT_FOUND: "not_found",
        status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
        status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    }.get(status_code, "error")
