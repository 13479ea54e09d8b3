"""Page of jobs: ``{"jobs": [...], "count", "next", "previous"}``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class JobPagination(PageNumberPagination):
    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "pageSize"
    max_page_size = 500

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "jobs": data,
                "count": self.page.paginator.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
            }
        )
