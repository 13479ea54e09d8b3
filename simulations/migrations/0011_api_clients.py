"""API clients and their keys; every job belongs to a client. Jobs made before this
belong to the system client (as jobs from Kafka, the daily run and the command line
do from now on), so the per-client idempotency keys stay unique."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

SYSTEM = "system"


def jobs_to_the_system_client(apps, schema_editor):
    ApiClient = apps.get_model("simulations", "ApiClient")
    SimulationJob = apps.get_model("simulations", "SimulationJob")
    system, _ = ApiClient.objects.get_or_create(
        name=SYSTEM, defaults={"is_system": True, "scopes": ["submit", "read", "cancel", "operate"]}
    )
    SimulationJob.objects.filter(client__isnull=True).update(client=system)


class Migration(migrations.Migration):
    dependencies = [
        ("simulations", "0010_outbox_next_attempt"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiClient",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True)),
                (
                    "scopes",
                    models.JSONField(blank=True, default=list, help_text="any of: submit, read, cancel, operate"),
                ),
                ("is_system", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "API client",
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="ClientKey",
            fields=[
                (
                    "id",
                    models.CharField(editable=False, max_length=150, primary_key=True, serialize=False, unique=True),
                ),
                ("prefix", models.CharField(editable=False, max_length=8, unique=True)),
                ("hashed_key", models.CharField(editable=False, max_length=150)),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "name",
                    models.CharField(
                        default=None,
                        help_text="A free-form name for the API key. Need not be unique. 50 characters max.",
                        max_length=50,
                    ),
                ),
                (
                    "revoked",
                    models.BooleanField(
                        blank=True,
                        default=False,
                        help_text="If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)",
                    ),
                ),
                (
                    "expiry_date",
                    models.DateTimeField(
                        blank=True,
                        help_text="Once API key expires, clients cannot use it anymore.",
                        null=True,
                        verbose_name="Expires",
                    ),
                ),
            ],
            options={
                "verbose_name": "API key",
                "verbose_name_plural": "API keys",
                "ordering": ("-created",),
                "abstract": False,
            },
        ),
        migrations.RemoveConstraint(
            model_name="simulationjob",
            name="job_idempotency_key_unique",
        ),
        migrations.AddField(
            model_name="simulationjob",
            name="client",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="simulations.apiclient",
            ),
        ),
        migrations.RunPython(jobs_to_the_system_client, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="simulationjob",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False)),
                fields=("idempotency_key", "client"),
                name="job_client_idempotency_key_unique",
            ),
        ),
        migrations.AddField(
            model_name="clientkey",
            name="client",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="keys", to="simulations.apiclient"
            ),
        ),
    ]
