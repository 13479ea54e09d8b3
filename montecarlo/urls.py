"""Routes: the REST API at the root, the admin, the OpenAPI schema, the probes. Metrics
are on a port of their own (``WEB_METRICS_PORT``, deploy/gunicorn.conf.py)."""

from typing import Any

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from montecarlo.health import HealthApi, ReadyApi
from simulations.api import errors
from simulations.api.auth import ApiKeyAuthentication, ReadScopeOrStaff

# A key, or the admin's session: the page is opened by a person in a browser.
KEY_OR_SESSION = [ApiKeyAuthentication, SessionAuthentication]


class JsonErrors:
    """Errors in JSON, like everywhere else, not in the view's YAML or HTML."""

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), "application/json"
        return response


class SchemaApi(JsonErrors, SpectacularAPIView):
    """The OpenAPI schema, for clients with the read scope and staff users."""

    authentication_classes = KEY_OR_SESSION
    permission_classes = [ReadScopeOrStaff]


class DocsPage(JsonErrors, SpectacularSwaggerView):
    """``/docs``: the API for people (Swagger UI on the schema, its files from the app)."""

    authentication_classes = KEY_OR_SESSION
    permission_classes = [ReadScopeOrStaff]
    url_name = "openapi-schema"


urlpatterns = [
    path("", include("simulations.api.urls")),
    path("", include("workers.api.urls")),
    path("health", HealthApi.as_view(), name="health"),
    path("ready", ReadyApi.as_view(), name="ready"),
    path("admin/", admin.site.urls),
    path("schema", SchemaApi.as_view(), name="openapi-schema"),
    path("docs", DocsPage.as_view(), name="docs"),
]

# JSON, never an HTML error page, for URLs no view answers and for crashes.
handler400 = errors.bad_request  # a Host not in ALLOWED_HOSTS, say
handler404 = errors.not_found
handler500 = errors.server_error
