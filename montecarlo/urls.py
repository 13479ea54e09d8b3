"""Routes: the REST API at the root, the admin, the OpenAPI schema, the probes. Metrics
are on a port of their own (``WEB_METRICS_PORT``, deploy/gunicorn.conf.py)."""

from typing import Any

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from montecarlo.health import HealthApi, ReadyApi
from simulations.api import errors
from simulations.api.auth import HasScope
from simulations.models import Scope


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema, for clients with the read scope."""

    scopes = {"GET": Scope.READ}
    permission_classes = [HasScope]

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Errors in JSON, like everywhere else, not in the schema's YAML."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), "application/json"
        return response


urlpatterns = [
    path("", include("simulations.api.urls")),
    path("", include("workers.api.urls")),
    path("health", HealthApi.as_view(), name="health"),
    path("ready", ReadyApi.as_view(), name="ready"),
    path("admin/", admin.site.urls),
    path("schema", SchemaApi.as_view(), name="openapi-schema"),
]

# JSON, never an HTML error page, for URLs no view answers and for crashes.
handler400 = errors.bad_request  # a Host not in ALLOWED_HOSTS, say
handler404 = errors.not_found
handler500 = errors.server_error
