"""Probes come from inside the cluster, addressed by pod IP: they are answered whatever
Host they send, while every other path keeps Django's Host check
(so pagination links never echo an untrusted host)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host

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
