"""Who calls the API, and what they may do.

A client sends its key as ``Authorization: Api-Key <key>`` (djangorestframework-api-key
parses and checks it against the stored hash). A view names the scope each method
needs in ``scopes``; no key is a 401, a key without the scope a 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from simulations.models import ApiClient, ClientKey


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
