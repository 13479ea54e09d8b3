from django.urls import path, re_path

from .views import (
    AccountRiskApi,
    BookReportApi,
    SimulationBatchApi,
    SimulationCancelApi,
    SimulationChartApi,
    SimulationCollectionApi,
    SimulationDetailApi,
)

urlpatterns = [
    path("reports/daily/<str:run_date>", BookReportApi.as_view(), name="report-daily"),
    path("funded-accounts/<str:account_id>/risk", AccountRiskApi.as_view(), name="funded-account-risk"),
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
