"""One view per operation: validate, call a service or selector, serialize."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from simulations import charts, selectors, services
from simulations.api.pagination import JobPagination
from simulations.api.serializers import (
    AccountRiskOutput,
    BookReportOutput,
    ChartQuery,
    JobBatchCreatedOutput,
    JobCancelledOutput,
    JobCreatedOutput,
    JobDetailOutput,
    JobListItemOutput,
    JobListQuery,
    JobPageOutput,
    SimulationBatchCreateInput,
    SimulationCreateInput,
)
from simulations.errors import InvalidInput
from simulations.models import Scope

ERRORS = {
    400: OpenApiResponse(description="invalid input, with reasons per field"),
    401: OpenApiResponse(description="no API key, or an unknown, revoked or expired one"),
    403: OpenApiResponse(description="the key's client lacks the scope"),
    413: OpenApiResponse(description="the request body is larger than API_MAX_BODY_BYTES"),
    404: OpenApiResponse(description="unknown job"),
    409: OpenApiResponse(description="Idempotency-Key reused for another request"),
    415: OpenApiResponse(description="a body that is not JSON, or a Content-Encoding other than gzip"),
    429: OpenApiResponse(
        description="above the client's request rate (API_RATE_LIMIT, with Retry-After)"
        " or its work budget (API_CLIENT_MAX_QUEUED_SAMPLES)"
    ),
    503: OpenApiResponse(description="a dependency is down"),
}


CONTENT_ENCODING = OpenApiParameter(
    "Content-Encoding",
    str,
    OpenApiParameter.HEADER,
    required=False,
    enum=["identity", "gzip"],
    description="gzip: the body is compressed; it may expand to API_MAX_BODY_BYTES",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="the same key and request return the same job(s); another request with the key is a 409"
    " (at most 200 characters)",
)


class SimulationCollectionApi(APIView):
    """``POST /simulations`` creates a job; ``GET /simulations`` lists them."""

    scopes = {"POST": Scope.SUBMIT, "GET": Scope.READ}

    @extend_schema(
        operation_id="simulations_create",
        request=SimulationCreateInput,
        responses={202: JobCreatedOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY, CONTENT_ENCODING],
    )
    def post(self, request: Request) -> Response:
        payload = SimulationCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        job = services.create_job(
            **payload.validated_data, idempotency_key=request.headers.get("Idempotency-Key"), client=request.user
        )
        return Response(JobCreatedOutput(job).data, status=202)

    @extend_schema(
        operation_id="simulations_list",
        parameters=[JobListQuery],
        responses={
            200: JobPageOutput,
            **{code: ERRORS[code] for code in (400, 401, 403, 429)},
            404: OpenApiResponse(description="a page past the last"),
        },
    )
    def get(self, request: Request) -> Response:
        # a plain dict: DRF reads an empty value in a QueryDict as "not given", as for
        # HTML forms; here "status=" is a value, and not one the schema allows
        query = JobListQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if k not in ("page", "page_size")}
        paginator = JobPagination()
        page = paginator.paginate_queryset(selectors.job_list(client=request.user, **filters), request, view=self)
        return paginator.get_paginated_response(JobListItemOutput(page, many=True).data)


class SimulationBatchApi(APIView):
    """``POST /simulations/batch`` creates many jobs at once: all of them, or none."""

    scopes = {"POST": Scope.SUBMIT}

    @extend_schema(
        operation_id="simulations_create_batch",
        request=SimulationBatchCreateInput,
        responses={202: JobBatchCreatedOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY, CONTENT_ENCODING],
    )
    def post(self, request: Request) -> Response:
        payload = SimulationBatchCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        jobs = services.create_jobs(
            payload.validated_data["jobs"], idempotency_key=request.headers.get("Idempotency-Key"), client=request.user
        )
        return Response({"jobs": JobCreatedOutput(jobs, many=True).data}, status=202)


class SimulationDetailApi(APIView):
    """``GET /simulations/{id}``: the job, its input, and its result when finished."""

    scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="simulations_retrieve",
        responses={200: JobDetailOutput, 401: ERRORS[401], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(job_id=job_id, client=request.user)
        return Response(JobDetailOutput(job).data)


class SimulationCancelApi(APIView):
    """``POST /simulations/{id}/cancel``: a pending or running job becomes ``cancelled``
    at once (a worker running it stops at its next progress write); a finished one is a 409."""

    scopes = {"POST": Scope.CANCEL}

    @extend_schema(
        operation_id="simulations_cancel",
        request=None,
        responses={
            200: JobCancelledOutput,
            401: ERRORS[401],
            403: ERRORS[403],
            404: ERRORS[404],
            409: OpenApiResponse(description="the job has finished already"),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = services.cancel_job(job_id=job_id, client=request.user)
        return Response(JobCancelledOutput(job).data)


class SimulationChartApi(APIView):
    """``GET /simulations/{id}/chart.svg`` or ``.png``: the equity fan (with the rule
    lines) or the final P&L histogram (with the outcome probabilities); a placeholder
    picture while the job has no result."""

    scopes = {"GET": Scope.READ}

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # an image client sends Accept: image/*; errors still answer in JSON, not 406
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="simulations_chart",
        parameters=[
            ChartQuery,
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(charts.FORMATS), description="svg or png"),
        ],
        responses={
            (200, "image/svg+xml"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
            **{code: ERRORS[code] for code in (400, 401, 403, 404, 429)},
        },
    )
    def get(self, request: Request, job_id: str, fmt: str) -> HttpResponse:
        query = ChartQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        job = selectors.job_get(job_id=job_id, client=request.user)
        picture, final = selectors.job_chart(job, fmt=fmt, **query.validated_data)
        response = HttpResponse(picture, content_type=charts.CONTENT_TYPES[fmt])
        # a finished job's chart never changes; a placeholder does
        response["Cache-Control"] = "private, max-age=86400, immutable" if final else "no-store"
        return response


class BookReportApi(APIView):
    """``GET /reports/daily/{date}``: the firm's book after that day's daily run (operators)."""

    scopes = {"GET": Scope.OPERATE}

    @extend_schema(
        operation_id="reports_daily",
        responses={200: BookReportOutput, **{code: ERRORS[code] for code in (400, 401, 403, 404, 429)}},
    )
    def get(self, request: Request, run_date: str) -> Response:
        try:
            day = dt.date.fromisoformat(run_date)
        except ValueError:
            raise InvalidInput({"date": ["must be a date, YYYY-MM-DD"]}) from None
        return Response(BookReportOutput(selectors.book_report_get(day)).data)


class AccountRiskApi(APIView):
    """``GET /funded-accounts/{id}/risk``: the account's P(breach) and expected payout at
    each daily run, with their intervals (operators)."""

    scopes = {"GET": Scope.OPERATE}

    @extend_schema(
        operation_id="funded_accounts_risk",
        responses={200: AccountRiskOutput, **{code: ERRORS[code] for code in (401, 403, 404, 429)}},
    )
    def get(self, request: Request, account_id: str) -> Response:
        runs = selectors.account_risk(account_id)
        return Response(AccountRiskOutput({"funded_account_id": account_id, "runs": runs}).data)
