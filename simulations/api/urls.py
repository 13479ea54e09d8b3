from django.urls import path

from .views import SimulationBatchApi, SimulationCancelApi, SimulationCollectionApi, SimulationDetailApi

urlpatterns = [
    path("simulations", SimulationCollectionApi.as_view(), name="simulations"),
    path("simulations/batch", SimulationBatchApi.as_view(), name="simulations-batch"),
    path("simulations/<str:job_id>", SimulationDetailApi.as_view(), name="simulation-detail"),
    path("simulations/<str:job_id>/cancel", SimulationCancelApi.as_view(), name="simulation-cancel"),
]
