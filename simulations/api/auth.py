"""Who calls the API, and what they may do.

A client sends its key as ``Authorization: Api-Key <key>`` (djangorestframework-api-key
parses and checks it against the stored hash). A view names the scope each method
needs in ``scopes``; no key is a 401, a key without the scope a 403, a client above
its request rate a 429 with Retry-After.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from simulations.models import ApiClient, ClientKey, Scope
from simulations.process import PerProcess

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
    """At most ``API_RATE_LIMIT`` requests per client in any window of its length: the
    times of the requests it let through, in a Redis sorted set per client (in the Redis
    of ``API_THROTTLE_REDIS_URL``), checked and added to by one script, so the check is
    one atomic round trip however high the limit.

    DRF's own throttle keeps the same list as one pickled value that each request reads
    and writes back whole: its cost grows with the limit (a client allowed 20,000 a
    minute moves 20,000 floats twice per request) and two requests at once can both
    pass on the same count. A refused request is not counted, as in DRF. If the Redis
    is away the request goes on: the limit protects the service, and refusing every call
    would be the outage itself."""

    scope = "client"

    def get_rate(self) -> str:
        return str(settings.API_RATE_LIMIT)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.user
        if not isinstance(client, ApiClient):
            return None  # refused before this anyway
        return f"throttle:{client.pk}:{client.created_at.timestamp():.0f}"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or (key := self.get_cache_key(request, view)) is None:
            return True
        assert self.num_requests is not None and self.duration is not None
        self.now = time.time()
        try:
            allowed, oldest = _throttle_script.get()(
                keys=[key], args=[self.now, self.duration, self.num_requests, f"{self.now}:{uuid.uuid4().hex[:8]}"]
            )
        except RedisError as exc:
            logger.warning("rate limit not checked, its Redis is away: %s", exc)
            return True
        self.oldest = float(oldest)
        return bool(allowed)

    def wait(self) -> float | None:
        """Seconds until the oldest request in the window leaves it."""
        assert self.duration is not None
        return max(0.0, self.oldest + self.duration - self.now)


# KEYS[1]: the client's requests (score: time); ARGV: now, window seconds, limit, a unique member.
# Returns {1, 0} and records the request, or {0, the oldest request's time}.
_THROTTLE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
  return {1, '0'}
end
return {0, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
"""


def _connect_throttle() -> Any:
    client = redis.Redis.from_url(settings.API_THROTTLE_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    return client.register_script(_THROTTLE)


# one client per process (a redis.Redis costs ~0.1 ms to build), anew if the URL changes
_throttle_script: PerProcess[Any] = PerProcess(_connect_throttle, key=lambda: settings.API_THROTTLE_REDIS_URL)


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
