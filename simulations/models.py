"""SimulationJob, the record of every run, and EventOutbox, the events it announces.

Rows are written only by ``services.py``; ``save()`` is never overridden.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, TypeVar

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from simulations import log_context
from simulations.fields import CompressedJSONField, PlainJSONField

M = TypeVar("M", bound=models.Model)


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JobTrigger(models.TextChoices):
    API = "api", "REST API"
    KAFKA = "kafka", "assessment.completed event"
    SCHEDULE = "schedule", "Daily funded-account run"
    CLI = "cli", "Command line"


class Scope(models.TextChoices):
    """What an API client may do."""

    SUBMIT = "submit", "create jobs"
    READ = "read", "read its own jobs and the schema"
    CANCEL = "cancel", "cancel its own jobs"
    OPERATE = "operate", "read every client's jobs, and the workers"


class ApiClient(models.Model):
    """Who calls the API: what it may do, its keys (stored hashed), and the jobs it owns.
    The system client owns the jobs from Kafka, the daily run and the command line."""

    name = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, blank=True, help_text="any of: submit, read, cancel, operate")
    is_system = models.BooleanField(default=False)
    # Trade samples this client may have queued and not finished; empty: API_CLIENT_MAX_QUEUED_SAMPLES.
    work_budget = models.BigIntegerField(
        null=True, blank=True, help_text="trade samples queued and unfinished at most; empty for the default"
    )
    created_at = models.DateTimeField(default=timezone.now)

    is_authenticated = True  # what DRF and Django ask of request.user

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def sees_every_job(self) -> bool:
        return Scope.OPERATE in self.scopes


class ClientKeyManager(APIKeyManager):
    def get_usable_keys(self) -> models.QuerySet[ClientKey]:
        return super().get_usable_keys().select_related("client")  # one query, not two

    def get_from_key(self, key: str) -> ClientKey:
        """The library's lookup (the usable key of the prefix, then its hash checked),
        with its client, as one statement written out instead of an ORM query compiled
        on every request: every API call authenticates, and the compiling was most of
        its cost (1.5 → 0.4 ms of CPU, benchmarks/api_requests.py)."""
        prefix, _, _ = key.partition(".")
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(_KEY_WITH_CLIENT, [prefix])
            row = cursor.fetchone()
        if row is None:
            raise self.model.DoesNotExist("ClientKey matching query does not exist.")
        width = len(ClientKey._meta.concrete_fields)
        api_key = _from_row(ClientKey, row[:width], connection)
        api_key.client = _from_row(ApiClient, row[width:], connection)
        if not api_key.is_valid(key):
            raise self.model.DoesNotExist("Key is not valid.")
        return api_key


class ClientKey(AbstractAPIKey):
    """An API key of a client (djangorestframework-api-key: a prefix and a SHA-512 hash)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    objects = ClientKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


def _columns(model: type[models.Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


_KEY_WITH_CLIENT = (
    f"SELECT {_columns(ClientKey, 'k')}, {_columns(ApiClient, 'c')}"
    f' FROM "{ClientKey._meta.db_table}" k JOIN "{ApiClient._meta.db_table}" c ON c."id" = k."client_id"'
    ' WHERE k."prefix" = %s AND NOT k."revoked"'
)


def _from_row(model: type[M], values: tuple, connection: BaseDatabaseWrapper) -> M:
    """A model from its concrete fields' column values, converted as the ORM's own
    reads convert them (the backend's converters, then the field's: JSON text parsed,
    SQLite's dates made datetimes)."""
    names, convertible = _convertible_fields(model, connection.alias)
    converted = list(values)
    for i, column, by_backend, by_field in convertible:
        # the backend's are asked of this thread's connection: they are bound to it
        for convert in (connection.ops.get_db_converters(column) if by_backend else []) + by_field:
            converted[i] = convert(converted[i], column, connection)
    return model.from_db(connection.alias, names, converted)


@functools.cache
def _convertible_fields(model: type[models.Model], alias: str) -> tuple[list[str], list[tuple[int, Any, bool, list]]]:
    """Each concrete field's attribute name; the fields that have converters, with
    whether the backend has some for them and the field's own."""
    connection = connections[alias]
    fields = model._meta.concrete_fields
    convertible = []
    for i, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        by_backend, by_field = bool(connection.ops.get_db_converters(column)), column.get_db_converters(connection)
        if by_backend or by_field:
            convertible.append((i, column, by_backend, by_field))
    return [field.attname for field in fields], convertible


class RuleSet(models.Model):
    """A firm's named rules (and the account size they are for), in versions: a change
    makes a new version, and a job keeps the version it ran with. Written only by
    ``services.save_rule_set``, which validates the rules as the engine does."""

    name = models.SlugField(max_length=64, help_text="what jobs and events name it by, e.g. 100k-2phase")
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True, default="")
    # the engine's Rules, snake_case, as SimulationConfig takes them; or evaluation phases
    rules = models.JSONField(default=dict, blank=True)
    phases = models.JSONField(
        default=list, blank=True, help_text="evaluation phases in order, each {rules, startingBalance}; then no rules"
    )
    starting_balance = models.FloatField(
        null=True, blank=True, help_text="the account size; empty: the request's (or the default)"
    )
    # the engine's PayoutPolicy, snake_case: a funded account's payouts (empty: none)
    payout = models.JSONField(null=True, blank=True, help_text="a funded account's payout policy; empty: none")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="rule_set_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class SimulationJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assessment_id = models.CharField(max_length=64, null=True, blank=True)
    funded_account_id = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    trigger = models.CharField(max_length=16, choices=JobTrigger.choices, default=JobTrigger.API)
    # Any caller's "same request again" key (Idempotency-Key header, event id, ...).
    # Unique through Meta.constraints: a field-level unique=True adds a second
    # (varchar_pattern_ops) index that every write pays for and no query uses.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # The id of the request (HTTP, Kafka event, daily run) that created the job: in its
    # every log line and on its Kafka events (simulations.log_context).
    request_id = models.CharField(max_length=log_context.MAX_LENGTH, blank=True, default="")
    # The client the job belongs to; no index of its own (every index costs each write):
    # a client's list filters the created_at scan, its keys use the constraint's index.
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The rule set version the job's rules came from (copied into input_data.config.rules
    # when the job was made); no index of its own: the admin's filter is rare.
    rule_set = models.ForeignKey(
        RuleSet, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    input_data = models.JSONField(default=dict, blank=True)
    result = CompressedJSONField(null=True, blank=True)  # see simulations/fields.py
    # The few numbers of the result (SimulationResult.summary()): lists read them without the result.
    summary = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    worker_id = models.CharField(max_length=255, blank=True, default="")
    # The wake-up task (its task id) that took this API job; empty: not taken yet. Kept
    # once the job runs: a redelivered wake-up finds its jobs by it (services.dispatch).
    reserved_by = models.CharField(max_length=64, blank=True, default="")
    # The day a scheduled run is for (UTC); one per account, day and trigger.
    run_date = models.DateField(null=True, blank=True)
    paths_done = models.BigIntegerField(default=0)
    paths_total = models.BigIntegerField(default=0)
    # The trade samples the run draws at most (engine.planned_samples): what a work budget counts.
    samples_planned = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Partial: a job has an assessment or an account (rarely both), and every
            # lookup is by a value, so the NULL side would be an entry per write for nothing.
            models.Index(
                fields=["assessment_id", "status"],
                name="job_assessment_status",
                condition=Q(assessment_id__isnull=False),
            ),
            models.Index(
                fields=["funded_account_id", "status"],
                name="job_account_status",
                condition=Q(funded_account_id__isnull=False),
            ),
            models.Index(fields=["created_at"], name="job_created"),
            # Sweeps look only at unfinished jobs. Partial, so finishing a job (the
            # write the batch writer does most) adds no entry to it.
            models.Index(
                fields=["status", "updated_at"], name="job_unfinished", condition=Q(status__in=["pending", "running"])
            ),
            # The pending API jobs, oldest first: what a wake-up task takes.
            models.Index(fields=["created_at"], name="job_api_pending", condition=Q(status="pending", trigger="api")),
            # A client's queued work, summed at each API submit from the index alone.
            models.Index(
                fields=["client"],
                include=["samples_planned"],
                name="job_client_unfinished",
                condition=Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            # NULL keys are never equal anyway; leaving them out spares keyless jobs an entry.
            # Keys are per client: two clients may use the same key.
            models.UniqueConstraint(
                fields=["idempotency_key", "client"],
                name="job_client_idempotency_key_unique",
                condition=Q(idempotency_key__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(assessment_id__isnull=False) | Q(funded_account_id__isnull=False),
                name="job_has_assessment_or_account",
            ),
            models.UniqueConstraint(
                fields=["funded_account_id", "run_date", "trigger"],
                condition=Q(run_date__isnull=False),
                name="one_scheduled_run_per_account_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class EventOutbox(models.Model):
    """An event waiting to be published, written in the transaction of the change it announces.

    A queue, not a log: the relay deletes a row once Kafka acknowledged it (Kafka keeps
    the event for its retention), so the table holds only pending and failing events.
    It stays small, so it needs no index but its primary key, which the relay reads in
    order: each index was an entry written per event, ≈ 1 ms of a flush of 100 jobs.
    """

    # No database-level foreign key: rows are written only with their job, in its
    # transaction, and deleting a job cascades in the ORM. The constraint's deferred
    # check was ~15% of a batch flush (two events per finished job).
    job = models.ForeignKey(
        SimulationJob, on_delete=models.CASCADE, related_name="events", db_constraint=False, db_index=False
    )
    topic = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    payload = PlainJSONField()  # json, not jsonb: see simulations/fields.py
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # Set only when Kafka refused the event for what it is (too large, say): the relay
    # leaves it until then and sends the events behind it. Null: send when its turn comes.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"


class BookReport(models.Model):
    """The firm's book of funded accounts after one daily run: what the run's completed
    jobs say together. Written only by ``services.build_book_report``; rebuilt while
    the run's jobs still finish."""

    run_date = models.DateField(unique=True)
    accounts = models.PositiveIntegerField(help_text="accounts the daily run made a job for")
    completed = models.PositiveIntegerField(help_text="of them, jobs completed (the sums below are over these)")
    failed = models.PositiveIntegerField(help_text="of them, jobs failed or cancelled")
    # Sum of each account's expected payout; the interval takes the accounts as
    # independent (variance = sum of the per-account variances), which they need not be.
    expected_payouts = models.FloatField()
    payouts_std = models.FloatField()
    expected_breaches = models.FloatField(help_text="sum of the accounts' P(breach)")
    breaches_std = models.FloatField(help_text="sqrt of sum p(1 - p): independent accounts")
    top_accounts = models.JSONField(default=list, help_text="the 20 accounts with the largest expected payout")
    drifted = models.JSONField(
        default=list, help_text="accounts whose P(breach) rose by more than BOOK_DRIFT_THRESHOLD since their last run"
    )
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-run_date"]

    def __str__(self) -> str:
        return f"book {self.run_date}"
