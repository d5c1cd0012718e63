"""``GET /api/kpis/``: the staff dashboard's figures as JSON (PROTOCOL.md, staff only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.kpi_serializers import KpiQuerySerializer, KpiReportSerializer, kpi_query
from conversations.kpis import kpi_report


def _documented(view: Callable[..., Any]) -> Callable[..., Any]:
    """``@extend_schema`` when drf-spectacular is installed; the view works without it."""
    try:
        from drf_spectacular.utils import OpenApiResponse, extend_schema
    except ImportError:  # pragma: no cover - the OpenAPI document is optional here
        return view
    return extend_schema(
        summary="KPIs: latency percentiles, error and interruption rates, usage",
        parameters=[KpiQuerySerializer],
        responses={
            200: KpiReportSerializer,
            400: OpenApiResponse(description="bad_message: a query parameter is invalid"),
            401: OpenApiResponse(description="auth_failed: not authenticated"),
            403: OpenApiResponse(description="auth_failed: not staff"),
        },
        tags=["kpis"],
    )(view)


class KpiView(APIView):
    """Parse the filter, compute the report with the dashboard's selector, reply."""

    permission_classes = [IsAdminUser]

    @_documented
    def get(self, request: Request) -> Response:
        query = kpi_query(request.query_params)
        report = kpi_report(kpi_filter=query.validated_data["filter"])
        return Response(KpiReportSerializer(report).data)
