"""Routes: the REST API at the root, the admin, the OpenAPI schema, probes, metrics."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from montecarlo.health import HealthApi, ReadyApi
from simulations.api import errors
from simulations.metrics import metrics_view

urlpatterns = [
    path("", include("simulations.api.urls")),
    path("", include("workers.api.urls")),
    path("health", HealthApi.as_view(), name="health"),
    path("ready", ReadyApi.as_view(), name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("schema", SpectacularAPIView.as_view(), name="openapi-schema"),
]

# JSON, never an HTML error page, for URLs no view answers and for crashes.
handler404 = errors.not_found
handler500 = errors.server_error
