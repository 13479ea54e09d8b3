"""Django admin: how operators inspect jobs and manage API clients. Jobs are
read-only: state changes go through services (the actions call ``services.cancel_job``
and ``services.rerun_job``). A job's page draws its charts and tables from the result;
the list reads the small ``summary``, never a result or an input. Keys are made here or
by ``manage.py api_keys``; a new key is shown once, when it is saved."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import charts, selectors, services
from .errors import InvalidInput, InvalidTransition, JobNotFound
from .models import ApiClient, BookReport, ClientKey, EventOutbox, JobStatus, RuleSet, SimulationJob


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


class RulesFilter(admin.SimpleListFilter):
    """Jobs by the rules their config switches on (a condition on the stored input, in
    the query: no input is read into Python)."""

    title = "rules"
    parameter_name = "rules"
    RULES = {
        "profit_target": "profit target",
        "max_drawdown": "max drawdown",
        "trailing": "trailing drawdown",
        "end_of_day": "end-of-day trailing",
        "trailing_lock": "trailing lock",
        "daily_loss_limit": "daily loss limit",
        "ruin_level": "ruin level",
        "min_trading_days": "min trading days",
        "max_trading_days": "time limit",
        "consistency": "consistency",
        "none": "no rules",
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(self.RULES.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        rules = "input_data__config__rules"
        if value == "trailing":
            return queryset.filter(**{f"{rules}__drawdown_type": "trailing"})
        if value == "end_of_day":
            return queryset.filter(**{f"{rules}__trailing_basis": "end_of_day"})
        if value == "none":
            return queryset.exclude(**{f"{rules}__has_any_keys": ["profit_target", "max_drawdown", "daily_loss_limit"]})
        if value in self.RULES:
            return queryset.filter(**{f"{rules}__has_key": value}).exclude(**{f"{rules}__{value}": None})
        return queryset


@admin.register(SimulationJob)
class SimulationJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "status",
        "trigger",
        "assessment_id",
        "funded_account_id",
        "client",
        "p_pass",
        "p_ruin",
        "paths_total",
        "duration",
        "progress",
        "created_at",
    )
    list_filter = ("status", "trigger", RulesFilter, "rule_set__name", "client", "created_at", "completed_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "assessment_id", "funded_account_id", "idempotency_key", "=request_id")
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
                    "reserved_by",
                    "paths_done",
                    "paths_total",
                )
            },
        ),
        ("Result", {"fields": ("charts", "result_tables")}),
        ("Input", {"fields": ("rule_set", "idempotency_key", "request_id", "input_pretty")}),
        ("Result as JSON", {"fields": ("result_pretty",), "classes": ("collapse",)}),
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
        "reserved_by",
        "paths_done",
        "paths_total",
        "rule_set",
        "idempotency_key",
        "request_id",
        "input_pretty",
        "result_pretty",
        "charts",
        "result_tables",
    )
    inlines = [EventInline]
    actions = ["cancel_jobs", "rerun_jobs"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SimulationJob]:
        jobs = super().get_queryset(request).select_related("client")
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            return jobs.defer("result", "input_data")  # the list shows the summary only
        return jobs

    @admin.display(description="P(pass)")
    def p_pass(self, job: SimulationJob) -> str:
        return _share((job.summary or {}).get("probabilityOfPass"))

    @admin.display(description="P(ruin)")
    def p_ruin(self, job: SimulationJob) -> str:
        return _share((job.summary or {}).get("probabilityOfRuin"))

    @admin.display(description="duration")
    def duration(self, job: SimulationJob) -> str:
        if job.started_at is None or job.completed_at is None:
            return "-"
        return f"{(job.completed_at - job.started_at).total_seconds():.1f} s"

    @admin.display(description="progress")
    def progress(self, job: SimulationJob) -> str:
        if job.status != JobStatus.RUNNING or not job.paths_total:
            return "-"
        return f"{job.paths_done / job.paths_total:.0%}"

    @admin.display(description="charts")
    def charts(self, job: SimulationJob) -> SafeString:
        pictures = [
            selectors.job_chart(job, chart=chart, fmt="svg", width=720, height=380)[0].decode()
            for chart in ("fan", "histogram")
        ]
        # our own SVG, drawn by matplotlib from numbers: inline, so the page needs no API key
        return mark_safe('<div class="mc-charts">' + "".join(pictures) + "</div>")

    @admin.display(description="summary")
    def result_tables(self, job: SimulationJob) -> str:
        result = job.result
        if not result:
            return "-"
        probabilities = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{} – {}</td><td>{}</td></tr>",
            (
                (name, _share(p["estimate"]), _share(p["ci95_low"]), _share(p["ci95_high"]), f"{p['count']:,}")
                for name, p in result["probabilities"].items()
            ),
        )
        rows = [("final P&L", result["final_pnl"]), ("max drawdown", result["max_drawdown"])]
        if result.get("steps_to_pass"):
            rows.append((f"{result['unit']}s to pass", result["steps_to_pass"]))
        payouts = result.get("payouts")
        if payouts:
            rows.append(("paid to the trader", payouts["paid"]))
            rows.append(("days to first payout", payouts["days_to_first_payout"]))
            if payouts["firm_net"]:
                rows.append(("firm's net", payouts["firm_net"]))
        names = list(result["final_pnl"]["percentiles"])
        percentiles = format_html_join(
            "",
            "<tr><th>{}</th>{}</tr>",
            (
                (label, format_html_join("", "<td>{}</td>", ((_amount(d["percentiles"][n]),) for n in names)))
                for label, d in rows
            ),
        )
        head = format_html_join("", "<th>{}</th>", ((n,) for n in names))
        causes = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (name.replace("_", " "), _share(n / result["paths"]), f"{n:,}")
                for name, n in result.get("failure_causes", {}).items()
            ),
        )
        ignored = format_html_join(
            "", "<li>{}: {}</li>", ((name, why) for name, why in result.get("ignored_settings", {}).items())
        )
        return format_html(
            "<p>{} paths × {} {}s, seed {}</p>"
            "<table><tr><th>outcome</th><th>probability</th><th>95% interval</th><th>paths</th></tr>{}</table>"
            '<table class="mc-causes"><tr><th>failed by</th><th>share of paths</th><th>paths</th></tr>{}</table>'
            "<table><tr><th></th>{}</tr>{}</table>"
            "{}",
            f"{result['paths']:,}",
            result["horizon"],
            result["unit"],
            result["seed"],
            probabilities,
            causes,
            head,
            percentiles,
            format_html("<p>Ignored settings:</p><ul>{}</ul>", ignored) if ignored else "",
        )

    @admin.action(description="Re-run the selected failed or cancelled jobs as new jobs")
    def rerun_jobs(self, request: HttpRequest, queryset: QuerySet[SimulationJob]) -> None:
        made, skipped = [], 0
        for job_id in queryset.values_list("id", flat=True):
            try:
                made.append(services.rerun_job(job_id=job_id))
            except (InvalidTransition, JobNotFound):
                skipped += 1
        self.message_user(
            request,
            f"{len(made)} new job(s) created, {skipped} skipped (only failed or cancelled jobs are re-run)",
            messages.SUCCESS if made else messages.WARNING,
        )

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


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _amount(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


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


class RuleSetForm(forms.ModelForm):
    class Meta:
        model = RuleSet
        fields = ["name", "description", "starting_balance", "rules", "phases", "payout"]
        help_texts = {
            "rules": 'as in a job\'s config.rules, e.g. {"profitTarget": 8000, "maxDrawdown": 5000}',
            "phases": 'or evaluation phases, e.g. [{"rules": {"profitTarget": 8000}}, {"rules": ...}]',
            "payout": 'a funded account\'s payouts, as in config.payout, e.g. {"split": 0.8, "cadenceDays": 10}',
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "rules" in data and "phases" in data:
            try:  # the engine's own validation, its reasons on the form
                data["rules"], data["phases"], data["payout"] = services.check_rule_set(
                    rules=data["rules"] or {},
                    phases=data["phases"] or [],
                    starting_balance=data.get("starting_balance"),
                    payout=data.get("payout"),
                )
            except InvalidInput as exc:
                raise ValidationError(
                    {"rules": [f"{name}: {', '.join(why)}" for name, why in exc.errors.items()]}
                ) from None
        return data


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    """Saving a change makes a new version; jobs made before keep theirs (and so none is
    ever deleted)."""

    form = RuleSetForm
    list_display = ("name", "version", "starting_balance", "description", "created_at")
    list_filter = ("name",)
    search_fields = ("name", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any | None = None) -> tuple[str, ...]:
        return ("name", "version", "created_at") if obj else ("version", "created_at")

    def save_model(self, request: HttpRequest, obj: RuleSet, form: Any, change: bool) -> None:
        saved = services.save_rule_set(
            name=obj.name,
            rules=obj.rules,
            phases=obj.phases,
            starting_balance=obj.starting_balance,
            payout=obj.payout,
            description=obj.description,
        )
        obj.pk, obj.version, obj.created_at = saved.pk, saved.version, saved.created_at

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False


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


@admin.register(BookReport)
class BookReportAdmin(admin.ModelAdmin):
    """The firm's book after each daily run, with a chart of the runs (read only: the
    reports are built by the beat task from the jobs)."""

    change_list_template = "admin/simulations/bookreport/change_list.html"
    list_display = ("run_date", "accounts", "completed", "failed", "expected_payouts", "expected_breaches",
                    "drifted_count", "computed_at")  # fmt: skip
    readonly_fields = [f.name for f in BookReport._meta.fields]

    @admin.display(description="drifted")
    def drifted_count(self, report: BookReport) -> int:
        return len(report.drifted)

    def get_urls(self) -> list[Any]:
        chart = path("chart.svg", self.admin_site.admin_view(self.chart_view), name="simulations_bookreport_chart")
        return [chart, *super().get_urls()]

    def chart_view(self, request: HttpRequest) -> HttpResponse:
        reports = list(
            BookReport.objects.order_by("-run_date").values(
                "run_date", "expected_payouts", "payouts_std", "expected_breaches"
            )[:90]
        )[::-1]
        return HttpResponse(charts.render_book(reports, fmt="svg"), content_type=charts.CONTENT_TYPES["svg"])

    def has_add_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False
