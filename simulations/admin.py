"""Django admin: how operators inspect jobs and manage API clients. Jobs are
read-only: state changes go through services (the one action, cancel, calls
``services.cancel_job``). Keys are made here or by ``manage.py api_keys``; a new key
is shown once, when it is saved."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import services
from .errors import InvalidTransition
from .models import ApiClient, ClientKey, EventOutbox, SimulationJob


def pretty_json(value: Any) -> str:
    if value in (None, {}, []):
        return "-"
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    if len(text) > 200_000:
        text = text[:200_000] + "\n... (truncated)"
    return format_html('<pre style="max-height:40em;overflow:auto">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = EventOutbox
    fields = ("topic", "created_at", "attempts", "next_attempt_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False


@admin.register(SimulationJob)
class SimulationJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "status",
        "trigger",
        "assessment_id",
        "funded_account_id",
        "client",
        "attempts",
        "created_at",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "trigger", "client", "created_at", "completed_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "assessment_id", "funded_account_id", "idempotency_key")
    ordering = ("-created_at",)
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("id", "status", "trigger", "client", "assessment_id", "funded_account_id", "error")}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "completed_at",
                    "attempts",
                    "worker_id",
                    "paths_done",
                    "paths_total",
                )
            },
        ),
        ("Input", {"fields": ("idempotency_key", "input_pretty")}),
        ("Result", {"fields": ("result_pretty",)}),
    )
    readonly_fields = (
        "id",
        "status",
        "trigger",
        "assessment_id",
        "funded_account_id",
        "error",
        "created_at",
        "started_at",
        "completed_at",
        "attempts",
        "worker_id",
        "paths_done",
        "paths_total",
        "idempotency_key",
        "input_pretty",
        "result_pretty",
    )
    inlines = [EventInline]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected pending or running jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[SimulationJob]) -> None:
        cancelled = finished = 0
        for job_id in queryset.values_list("id", flat=True):
            try:
                services.cancel_job(job_id=job_id)
                cancelled += 1
            except InvalidTransition:  # finished already (or meanwhile)
                finished += 1
        self.message_user(
            request,
            f"{cancelled} job(s) cancelled, {finished} already finished",
            messages.SUCCESS if cancelled else messages.WARNING,
        )

    @admin.display(description="input data")
    def input_pretty(self, job: SimulationJob) -> str:
        return pretty_json(job.input_data)

    @admin.display(description="result")
    def result_pretty(self, job: SimulationJob) -> str:
        return pretty_json(job.result)


class DeliveryFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("waiting", "waiting (not tried yet)"),
            ("failing", "failing (Kafka refused or timed out)"),
            ("put_off", "put off (Kafka refused the event itself)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "waiting":
            return queryset.filter(attempts=0)
        if self.value() == "failing":
            return queryset.filter(attempts__gt=0)
        if self.value() == "put_off":
            return queryset.filter(next_attempt_at__isnull=False)
        return queryset


@admin.register(EventOutbox)
class EventOutboxAdmin(ReadOnlyAdmin):
    """Events not yet acknowledged by Kafka: the relay deletes a row once it was."""

    list_display = ("id", "topic", "key", "job", "created_at", "attempts", "next_attempt_at", "last_error")
    list_filter = ("topic", DeliveryFilter)
    search_fields = ("=job__id", "key")
    readonly_fields = ("job", "topic", "key", "payload", "created_at", "attempts", "next_attempt_at", "last_error")


class ClientKeyInline(admin.TabularInline):
    model = ClientKey
    fields = ("prefix", "name", "created", "expiry_date", "revoked")
    readonly_fields = ("prefix", "created")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False  # a new key is made on the key page, which shows its secret once


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "scopes", "work_budget", "is_system", "created_at")
    search_fields = ("name",)
    inlines = [ClientKeyInline]


@admin.register(ClientKey)
class ClientKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "client")
    list_filter = ("client", "revoked", "created")
    search_fields = ("name", "prefix", "client__name")


if admin.site.is_registered(APIKey):  # the library's own key model, which we do not use
    admin.site.unregister(APIKey)
