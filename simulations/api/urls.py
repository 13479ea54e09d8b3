from django.urls import path, re_path

from .views import (
    SimulationBatchApi,
    SimulationCancelApi,
    SimulationChartApi,
    SimulationCollectionApi,
    SimulationDetailApi,
)

urlpatterns = [
    path("simulations", SimulationCollectionApi.as_view(), name="simulations"),
    path("simulations/batch", SimulationBatchApi.as_view(), name="simulations-batch"),
    path("simulations/<str:job_id>", SimulationDetailApi.as_view(), name="simulation-detail"),
    path("simulations/<str:job_id>/cancel", SimulationCancelApi.as_view(), name="simulation-cancel"),
    re_path(
        r"^simulations/(?P<job_id>[^/]+)/chart\.(?P<fmt>svg|png)$",
        SimulationChartApi.as_view(),
        name="simulation-chart",
    ),
]
