"""Filters for ``GET /simulations`` (django-filter), named as the API spells them."""

from __future__ import annotations

import django_filters

from simulations.models import JobStatus, JobTrigger, SimulationJob


class JobFilter(django_filters.FilterSet):
    assessmentId = django_filters.CharFilter(field_name="assessment_id")
    fundedAccountId = django_filters.CharFilter(field_name="funded_account_id")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    trigger = django_filters.ChoiceFilter(choices=JobTrigger.choices)
    createdAfter = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdBefore = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = SimulationJob
        fields: list[str] = []
