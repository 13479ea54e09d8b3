"""Input and output shapes of the REST API (snake_case here; camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from simulations import charts
from simulations.engine.config import (
    AFTER_PAYOUT,
    DRAWDOWN_TYPES,
    MAX_PHASES,
    MAX_TRADING_DAYS,
    METHODS,
    MODES,
    TRAILING_BASES,
    UNITS,
    setting_bounds,
)
from simulations.engine.kernels import FAILURE_CAUSES
from simulations.engine.result import BAND_PERCENTILES, PERCENTILES
from simulations.engine.stats import Z95
from simulations.models import BookReport, JobStatus, JobTrigger, SimulationJob
from simulations.services import engine_limits
from simulations.services.rule_sets import RULE_SET_NAME
from simulations.wire import camel_name

_BOUNDS = setting_bounds(engine_limits())  # the engine's own bounds, stated in the schema


def _bounded(field: type[serializers.Field], name: str, **kwargs: Any) -> serializers.Field:
    low, high = _BOUNDS[name]
    return field(required=False, min_value=low, max_value=high, **kwargs)


class StrictInput(serializers.Serializer):
    """Refuses fields it does not know: a typo (``"trade"``) would otherwise be dropped
    without a word, and the job would fetch the history from the Core Service instead.
    The schema says so (``additionalProperties: false``, :class:`StrictInputSchema`), and
    states ``at_least_one_of``: fields of which a request must give one, not null."""

    at_least_one_of: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class StrictInputSchema(OpenApiSerializerExtension):
    """What :class:`StrictInput` refuses, stated in the OpenAPI schema."""

    target_class = StrictInput
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        names = [camel_name(name) for name in self.target.at_least_one_of]
        if names:
            schema["anyOf"] = [{"required": [n], "properties": {n: {"type": "string"}}} for n in names]
        return schema


class RulesSchema(StrictInput):
    """Documentation of ``config.rules`` (the fields of the engine's ``Rules``); the engine
    validates the values. Amounts are positive; ``null`` switches a rule off."""

    profit_target = serializers.FloatField(
        required=False, allow_null=True, help_text="profit over the starting balance that passes"
    )
    max_drawdown = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="amount below the start (static) or the high-water mark (trailing) that fails",
    )
    drawdown_type = serializers.ChoiceField(choices=DRAWDOWN_TYPES, required=False)
    trailing_basis = serializers.ChoiceField(
        choices=TRAILING_BASES,
        required=False,
        help_text="a trailing high-water mark moves after every trade (intraday) or at each day's close",
    )
    trailing_lock = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="the trailing floor stops rising at the starting balance plus this amount (0: the start)",
    )
    daily_loss_limit = serializers.FloatField(
        required=False, allow_null=True, help_text="loss within one simulated day that fails"
    )
    ruin_level = serializers.FloatField(
        required=False, allow_null=True, help_text="balance at which the account is ruined (default 0)"
    )
    min_trading_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_TRADING_DAYS,
        help_text="trading days before a pass counts; the target must still be held on the day it does",
    )
    max_trading_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_TRADING_DAYS,
        help_text="the evaluation ends after this many trading days",
    )
    time_limit_fails = serializers.BooleanField(
        required=False, help_text="undecided at max_trading_days is a failure (default true), else undecided"
    )
    consistency = serializers.FloatField(
        required=False,
        allow_null=True,
        max_value=1,
        help_text="a pass needs the best day's profit at most this share of the total profit (above 0, at most 1)",
    )
    target_inclusive = serializers.BooleanField(
        required=False, help_text="equity at the target exactly passes (default true); false: only above it"
    )
    floors_inclusive = serializers.BooleanField(
        required=False,
        help_text="equity at a floor exactly fails (default true): drawdown, daily limit, ruin; false: only below",
    )


class PhaseSchema(StrictInput):
    """One evaluation phase of ``config.phases``."""

    rules = RulesSchema(help_text="the phase's rules; a profitTarget is required (passing it opens the next phase)")
    starting_balance = serializers.FloatField(
        required=False, allow_null=True, help_text="the phase's account; default: config.startingBalance"
    )


class PayoutPolicySchema(StrictInput):
    """Documentation of ``config.payout`` (the fields of the engine's ``PayoutPolicy``):
    a funded account's payouts, checked at each trading day's close."""

    split = serializers.FloatField(required=False, help_text="the trader's share of a withdrawal (default 0.8)")
    cadence_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_TRADING_DAYS,
        help_text="a payout is due every this-many trading days; null (default): on request, whenever eligible",
    )
    min_payout = serializers.FloatField(required=False, min_value=0, help_text="the smallest withdrawal taken")
    max_payout = serializers.FloatField(required=False, allow_null=True, help_text="the largest withdrawal")
    buffer = serializers.FloatField(
        required=False, min_value=0, help_text="kept above the starting balance: what is above it may be withdrawn"
    )
    min_winning_days = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_TRADING_DAYS, help_text="winning days since the last payout"
    )
    winning_day_profit = serializers.FloatField(
        required=False, min_value=0, help_text="a day's profit that makes it a winning day (0: any profit)"
    )
    after_payout = serializers.ChoiceField(
        choices=AFTER_PAYOUT,
        required=False,
        help_text="the trailing floor after a withdrawal: moves down with it (shift), stays (keep), or stops at "
        "the starting balance (lock_at_start)",
    )
    fees = serializers.FloatField(
        required=False, allow_null=True, min_value=0, help_text="what the trader paid the firm: gives its net"
    )


class ConfigSchema(StrictInput):
    """Documentation of ``config`` (the fields of the engine's ``SimulationConfig``, with
    its bounds); every field is optional."""

    paths = serializers.JSONField(required=False, help_text=f'number of paths (1 to {_BOUNDS["paths"][1]}), or "auto"')
    horizon = _bounded(
        serializers.IntegerField, "horizon", help_text="trades (or days) per path; default: the history's length"
    )
    method = serializers.ChoiceField(choices=METHODS, required=False)
    block_size = _bounded(
        serializers.FloatField, "block_size", help_text="mean block length of the stationary bootstrap"
    )
    seed = _bounded(serializers.IntegerField, "seed", allow_null=True, help_text="default: drawn and echoed")
    mode = serializers.ChoiceField(choices=MODES, required=False)
    starting_balance = serializers.FloatField(required=False, help_text="positive")
    unit = serializers.ChoiceField(choices=UNITS, required=False)
    trades_per_day = _bounded(serializers.IntegerField, "trades_per_day", allow_null=True)
    stop_at_decision = serializers.BooleanField(required=False)
    rules = RulesSchema(required=False)
    phases = PhaseSchema(
        many=True,
        required=False,
        help_text=f"evaluation phases in order (at most {MAX_PHASES}), each with its own rules and account; "
        "a path that passes one starts the next with the next step; then config.rules is not given",
    )
    payout = PayoutPolicySchema(
        required=False, allow_null=True, help_text="a funded account's payout policy (rules without a target)"
    )
    auto_tolerance = _bounded(serializers.FloatField, "auto_tolerance")
    auto_max_paths = _bounded(serializers.IntegerField, "auto_max_paths")
    band_paths = _bounded(
        serializers.IntegerField, "band_paths", help_text="the equity fan is drawn from this many paths"
    )
    fan_points = _bounded(serializers.IntegerField, "fan_points")
    histogram_bins = _bounded(serializers.IntegerField, "histogram_bins")


class TradeSchema(serializers.Serializer):
    pnl = serializers.FloatField(help_text="P&L in account currency (or 'return' in returns mode)")
    closed_at = serializers.DateTimeField(required=False, help_text="when known, days are resampled whole")
    mae = serializers.FloatField(
        required=False,
        min_value=0,
        help_text="max adverse excursion: the worst open loss before the close, an amount (returns mode: a "
        "fraction of the equity, below 1); crossing a floor fails the path even if the trade closes above it",
    )


@extend_schema_field(ConfigSchema)
class ConfigField(serializers.JSONField):
    pass


@extend_schema_field(TradeSchema(many=True))
class TradesField(serializers.JSONField):
    pass


class SimulationCreateInput(StrictInput):
    at_least_one_of = ("assessment_id", "funded_account_id")

    assessment_id = serializers.CharField(required=False, allow_null=True, max_length=64)
    funded_account_id = serializers.CharField(required=False, allow_null=True, max_length=64)
    trades = TradesField(
        required=False, allow_null=True, help_text="inline history; otherwise fetched from the Core Service"
    )
    config = ConfigField(required=False, allow_null=True)
    rule_set = serializers.RegexField(
        RULE_SET_NAME.pattern,
        required=False,
        allow_null=True,
        max_length=64,
        help_text="the name of a rule set: its latest version's rules (and account size) are the job's; "
        "then config may not give rules (or startingBalance, if the rule set sets it)",
    )


class SimulationBatchCreateInput(StrictInput):
    jobs = SimulationCreateInput(
        many=True,
        allow_empty=False,
        help_text="each as for POST /simulations, at most SIMULATION_BATCH_MAX_JOBS "
        "(1,000 by default); all are created, or none",
    )

    def validate_jobs(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(jobs) > settings.SIMULATION_BATCH_MAX_JOBS:
            raise serializers.ValidationError(f"at most {settings.SIMULATION_BATCH_MAX_JOBS} jobs per request")
        return jobs


class JobListQuery(StrictInput):
    """The query of ``GET /simulations``, as the schema states it and the view checks
    it: a bad value (``page=0``, an empty or unparsable date) or an unknown parameter
    (``assesmentId``, which would list every job) is a 400 naming it."""

    assessmentId = serializers.CharField(source="assessment_id", max_length=64, required=False)
    fundedAccountId = serializers.CharField(source="funded_account_id", max_length=64, required=False)
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    trigger = serializers.ChoiceField(choices=JobTrigger.choices, required=False)
    createdAfter = serializers.DateTimeField(
        source="created_after", required=False, help_text="jobs created at or after this time"
    )
    createdBefore = serializers.DateTimeField(
        source="created_before", required=False, help_text="jobs created before this time"
    )
    page = serializers.IntegerField(min_value=1, required=False)
    pageSize = serializers.IntegerField(
        source="page_size", min_value=1, max_value=500, required=False, help_text=f"default {settings.API_PAGE_SIZE}"
    )


class ChartQuery(StrictInput):
    """The query of ``GET /simulations/{id}/chart.svg|png``."""

    chart = serializers.ChoiceField(choices=charts.CHARTS, required=False, default="fan")
    width = serializers.IntegerField(min_value=charts.WIDTH[0], max_value=charts.WIDTH[1], required=False, default=800)
    height = serializers.IntegerField(
        min_value=charts.HEIGHT[0], max_value=charts.HEIGHT[1], required=False, default=450
    )


class JobCreatedOutput(serializers.Serializer):
    job_id = serializers.UUIDField(source="id")
    status = serializers.ChoiceField(choices=JobStatus.choices)


class JobCancelledOutput(JobCreatedOutput):
    error = serializers.CharField()
    completed_at = serializers.DateTimeField()


class JobBatchCreatedOutput(serializers.Serializer):
    jobs = JobCreatedOutput(many=True, help_text="in the order of the request")


class ProgressOutput(serializers.Serializer):
    paths_done = serializers.IntegerField()
    paths_total = serializers.IntegerField()


class JobListItemOutput(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()

    class Meta:
        model = SimulationJob
        fields = [
            "id",
            "assessment_id",
            "funded_account_id",
            "status",
            "trigger",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "completed_at",
            "progress",
            "summary",
        ]

    @extend_schema_field(ProgressOutput(allow_null=True))
    def get_progress(self, job: SimulationJob) -> dict[str, int] | None:
        if job.status != JobStatus.RUNNING:
            return None
        return {"paths_done": job.paths_done, "paths_total": job.paths_total}

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_summary(self, job: SimulationJob) -> dict[str, Any] | None:
        result = job.result or {}
        if not result:
            return None
        probabilities = result.get("probabilities", {})
        return {
            "paths": result.get("paths"),
            "probability_of_profit": probabilities.get("profit", {}).get("estimate"),
            "probability_of_ruin": probabilities.get("ruin", {}).get("estimate"),
            "probability_of_pass": probabilities.get("pass", {}).get("estimate"),
        }


def _percentiles(names: tuple[int, ...], what: str, *, along: bool = False, **kwargs: Any) -> serializers.Serializer:
    """An object with one number per percentile (``p5``, ``p50`` ...), or one list of
    numbers per percentile (``along`` the fan's steps)."""

    def field(p: int) -> serializers.Field:
        text = f"{p}th percentile, {what}"
        if along:
            return serializers.ListField(child=serializers.FloatField(), help_text=text)
        return serializers.FloatField(allow_null=True, help_text=text)

    name = f"{'Bands' if along else 'Percentiles'}{len(names)}"
    return type(name, (serializers.Serializer,), {f"p{p}": field(p) for p in names})(**kwargs)


class DistributionSchema(serializers.Serializer):
    """One per-path quantity across the paths; every number is null when ``count`` is 0."""

    count = serializers.IntegerField(help_text="paths the quantity was measured on")
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True, help_text="standard deviation")
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    percentiles = _percentiles(PERCENTILES, "in the quantity's unit")


class ProbabilitySchema(serializers.Serializer):
    estimate = serializers.FloatField(help_text="share of paths, 0 to 1")
    std_error = serializers.FloatField(help_text="standard error of the estimate")
    ci95_low = serializers.FloatField(help_text="95% Wilson interval, low end")
    ci95_high = serializers.FloatField(help_text="95% Wilson interval, high end")
    count = serializers.IntegerField(help_text="paths with the outcome")


class ProbabilitiesSchema(serializers.Serializer):
    profit = ProbabilitySchema(help_text="final P&L above zero")
    ruin = ProbabilitySchema(help_text="equity reached the ruin level")
    passed = ProbabilitySchema(help_text="the profit target reached before any rule failed")
    fail = ProbabilitySchema(help_text="a rule failed (ruin, drawdown, daily loss, time limit) before a pass")
    undecided = ProbabilitySchema(help_text="neither by the horizon")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["pass"] = fields.pop("passed")  # a keyword in Python, a name on the wire
        return fields


class EquityFanSchema(serializers.Serializer):
    steps = serializers.ListField(child=serializers.IntegerField(), help_text="step counts, in the result's unit")
    bands = _percentiles(
        BAND_PERCENTILES, "equity in account currency at each step", along=True, help_text="one list per band"
    )
    paths = serializers.IntegerField(help_text="paths the fan is drawn from (band_paths)")


class HistogramSchema(serializers.Serializer):
    edges = serializers.ListField(child=serializers.FloatField(), help_text="bin edges, final P&L in account currency")
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="paths per bin (one fewer than edges)")
    below = serializers.IntegerField(help_text="paths below the first edge (under p0.5)")
    above = serializers.IntegerField(help_text="paths above the last edge (over p99.5)")


class PayoutResultSchema(serializers.Serializer):
    paid = DistributionSchema(help_text="the trader's total over the horizon per path (0 without a payout)")
    payouts = DistributionSchema(help_text="payouts taken per path")
    any_payout = ProbabilitySchema(help_text="at least one payout before the horizon's end")
    days_to_first_payout = DistributionSchema(help_text="trading days to the first payout, on paths with one")
    breach = ProbabilitySchema(help_text="the account failed a rule before the horizon's end")
    firm_net = DistributionSchema(allow_null=True, help_text="fees less the trader's total, when fees are given")


class ResultSchema(serializers.Serializer):
    """Documentation of a finished job's ``result`` (the engine's ``SimulationResult``;
    a test keeps the two equal). Amounts in account currency, steps in ``unit``s."""

    paths = serializers.IntegerField(help_text="paths simulated")
    horizon = serializers.IntegerField(help_text="steps per path")
    unit = serializers.ChoiceField(choices=["trade", "day"], help_text="what one step resamples")
    seed = serializers.IntegerField(help_text="reproduces the run with the same input")
    config = serializers.DictField(help_text="the settings used, defaults filled in (as in config)")
    final_pnl = DistributionSchema(help_text="P&L at each path's end, account currency")
    final_return = DistributionSchema(help_text="final P&L over the starting balance, a fraction")
    max_drawdown = DistributionSchema(help_text="largest fall from a high-water mark, account currency")
    max_drawdown_pct = DistributionSchema(help_text="the same as a fraction of that high-water mark")
    longest_losing_streak = DistributionSchema(help_text="most losing steps in a row")
    steps_to_pass = DistributionSchema(allow_null=True, help_text="steps until the target, on passing paths")
    days_to_pass = DistributionSchema(
        allow_null=True, help_text="trading days until the (last phase's) target, on passing paths, when days count"
    )
    payouts = PayoutResultSchema(allow_null=True, help_text="with a payout policy: what the trader is paid")
    probabilities = ProbabilitiesSchema()
    phase_pass = ProbabilitySchema(
        many=True,
        allow_null=True,
        help_text="with phases: the probability of passing each phase, in order (pass: passing them all)",
    )
    failure_causes = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="failed paths by the rule that failed them: " + ", ".join(FAILURE_CAUSES.values()),
    )
    ignored_settings = serializers.DictField(
        child=serializers.CharField(), help_text="settings given that did nothing for this input, and why"
    )
    equity_fan = EquityFanSchema()
    histogram = HistogramSchema()
    elapsed_seconds = serializers.FloatField(help_text="the engine's time for this job, seconds")
    versions = serializers.DictField(child=serializers.CharField(), help_text="engine and library versions")


@extend_schema_field(ResultSchema(allow_null=True))
class ResultField(serializers.JSONField):
    pass


class RuleSetRefOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(help_text="the version the job's rules were copied from")


class JobDetailOutput(JobListItemOutput):
    input_data = serializers.JSONField()
    result = ResultField(allow_null=True)
    rule_set = serializers.SerializerMethodField()

    class Meta(JobListItemOutput.Meta):
        fields = JobListItemOutput.Meta.fields + ["input_data", "result", "rule_set"]

    @extend_schema_field(RuleSetRefOutput(allow_null=True))
    def get_rule_set(self, job: SimulationJob) -> dict[str, Any] | None:
        if job.rule_set_id is None:
            return None
        return {"name": job.rule_set.name, "version": job.rule_set.version}


class JobPageOutput(serializers.Serializer):
    """Documentation of a page of ``GET /simulations``."""

    jobs = JobListItemOutput(many=True)
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


INDEPENDENCE = (
    "the accounts are taken as independent: the variance of a sum is the sum of the accounts' variances, "
    "and the interval is the normal one around the sum"
)


class BookReportOutput(serializers.ModelSerializer):
    """``GET /reports/daily/{date}``: the firm's book after that day's run."""

    payouts_ci95 = serializers.SerializerMethodField(help_text="95% interval of the total payouts (independence)")
    breaches_ci95 = serializers.SerializerMethodField(help_text="95% interval of the breaches (independence)")
    intervals = serializers.SerializerMethodField(help_text="what the intervals assume")

    class Meta:
        model = BookReport
        fields = [
            "run_date", "accounts", "completed", "failed", "expected_payouts", "payouts_std", "payouts_ci95",
            "expected_breaches", "breaches_std", "breaches_ci95", "intervals", "top_accounts", "drifted",
            "computed_at",
        ]  # fmt: skip

    def get_payouts_ci95(self, report: BookReport) -> list[float]:
        half = Z95 * report.payouts_std
        return [max(report.expected_payouts - half, 0.0), report.expected_payouts + half]

    def get_breaches_ci95(self, report: BookReport) -> list[float]:
        half = Z95 * report.breaches_std
        return [max(report.expected_breaches - half, 0.0), min(report.expected_breaches + half, report.completed)]

    def get_intervals(self, report: BookReport) -> str:
        return INDEPENDENCE


class AccountRunOutput(serializers.Serializer):
    run_date = serializers.DateField()
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    probability_of_breach = serializers.FloatField(required=False, help_text="P(a rule broken before the horizon)")
    breach_ci95 = serializers.ListField(child=serializers.FloatField(), required=False, help_text="Wilson 95%")
    expected_payout = serializers.FloatField(required=False, help_text="mean total paid to the trader")
    payout_ci95 = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="95% interval of that mean (std / sqrt(paths))"
    )


class AccountRiskOutput(serializers.Serializer):
    """``GET /funded-accounts/{id}/risk``: each daily run of the account, oldest first."""

    funded_account_id = serializers.CharField()
    runs = AccountRunOutput(many=True)
