from django.urls import path

from .views import SimulationBatchApi, SimulationCollectionApi, SimulationDetailApi

urlpatterns = [
    path("simulations", SimulationCollectionApi.as_view(), name="simulations"),
    path("simulations/batch", SimulationBatchApi.as_view(), name="simulations-batch"),
    path("simulations/<str:job_id>", SimulationDetailApi.as_view(), name="simulation-detail"),
]
