from django.urls import path

from .views import WorkerListApi

urlpatterns = [path("workers", WorkerListApi.as_view(), name="workers")]
