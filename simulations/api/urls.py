from django.urls import path

from .views import SimulationCollectionApi, SimulationDetailApi

urlpatterns = [
    path("simulations", SimulationCollectionApi.as_view(), name="simulations"),
    path("simulations/<str:job_id>", SimulationDetailApi.as_view(), name="simulation-detail"),
]
