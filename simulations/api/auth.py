"""Who calls the API, and what they may do.

A client sends its key as ``Authorization: Api-Key <key>`` (djangorestframework-api-key
parses and checks it against the stored hash). A view names the scope each method
needs in ``scopes``; no key is a 401, a key without the scope a 403, a client above
its request rate a 429 with Retry-After.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import caches
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from simulations.models import ApiClient, ClientKey, Scope

logger = logging.getLogger(__name__)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[ApiClient, ClientKey] | None:
        secret = KeyParser().get(request)
        if not secret:
            return None
        try:
            key = ClientKey.objects.get_from_key(secret)
        except ClientKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("unknown or revoked API key") from None
        if key.has_expired:
            raise exceptions.AuthenticationFailed("expired API key")
        return key.client, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword  # makes "not authenticated" a 401 with WWW-Authenticate


class HasScope(permissions.BasePermission):
    """The scope the view's ``scopes`` names for this method."""

    def has_permission(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            raise exceptions.NotAuthenticated("send an API key: Authorization: Api-Key <key>")
        scopes = getattr(view, "scopes", {})
        needed = scopes.get("GET" if request.method == "HEAD" else request.method)
        if needed is None:
            # a method the view does not answer goes on to its 405; one it answers
            # without naming a scope is refused (OPTIONS, to any client, describes it)
            return request.method == "OPTIONS" or not hasattr(view, request.method.lower())
        if not client.may(needed):
            self.message = f"this key's client lacks the {needed or 'needed'} scope"
            return False
        return True


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """At most ``API_RATE_LIMIT`` requests per client (DRF's sliding window, kept in
    the Redis of ``API_THROTTLE_REDIS_URL``). If that Redis is away the request goes on:
    the limit protects the service, and refusing every call would be the outage itself."""

    scope = "client"

    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches["throttle"]

    def get_rate(self) -> str:
        return str(settings.API_RATE_LIMIT)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.user
        if not isinstance(client, ApiClient):
            return None  # refused before this anyway
        return f"throttle:{client.pk}:{client.created_at.timestamp():.0f}"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            logger.warning("rate limit not checked, its Redis is away: %s", exc)
            return True


class ApiKeySchema(OpenApiAuthenticationExtension):
    """The key, as the OpenAPI schema states it."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Api-Key <key>, a key of an API client (manage.py api_keys)",
        }


class ReadScopeOrStaff(permissions.BasePermission):
    """The schema and its page, ``/docs``: for a key with the read scope, or for a staff
    user signed in to the admin (a browser opening the page sends no API key)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if isinstance(user, ApiClient):
            return user.may(Scope.READ)
        if user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False):
            return True
        raise exceptions.NotAuthenticated("send an API key (Authorization: Api-Key <key>), or sign in to the admin")
