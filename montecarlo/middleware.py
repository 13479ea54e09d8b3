"""Middleware: request ids, HTTP metrics, and probes answered whatever their Host.

Probes come from inside the cluster, addressed by pod IP: they are answered whatever
Host they send, while every other path keeps Django's Host check
(so pagination links never echo an untrusted host)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host

from simulations import log_context, metrics

INTERNAL_PATHS = {"/health", "/ready"}


class InternalPathsAnyHost:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in INTERNAL_PATHS and settings.ALLOWED_HOSTS:
            host, _ = split_domain_port(request.META.get("HTTP_HOST", ""))
            if not validate_host(host, settings.ALLOWED_HOSTS):
                request.META["HTTP_HOST"] = settings.ALLOWED_HOSTS[0].lstrip(".").replace("*", "localhost")
        return self.get_response(request)


class HttpMetrics:
    """Every answered request counted by route, method and status, and timed. The route
    is the URL pattern's name (``simulation-detail``), never the path: one series per
    route, not per job id; what no pattern matched is ``unmatched``."""

    METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name or "unnamed") if match is not None else "unmatched"
        method = request.method if request.method in self.METHODS else "other"
        metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(route=route, method=method).observe(time.perf_counter() - start)
        return response


class RequestId:
    """Each request's id, taken from ``X-Request-ID`` when the caller (or the proxy) sent
    a plain token, else made; bound for every line logged while it is answered, stored
    on the jobs it creates (``services.build_job``) and returned in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = log_context.clean_request_id(request.headers.get(log_context.HTTP_HEADER))
        request_id = request_id or log_context.new_request_id()
        with log_context.bound_contextvars(request_id=request_id):
            response = self.get_response(request)
        response[log_context.HTTP_HEADER] = request_id
        return response
