"""Results stored zlib-compressed (``simulations/fields.py``) and fewer indexes to keep.

Both make finishing a job cheaper, which is the write the batch writer does most
(``benchmarks/batch_writes.py``):
- ``result`` becomes a compressed ``bytea`` kept inline (STORAGE EXTERNAL: PostgreSQL
  never tries to compress it again); existing results are converted in chunks;
- the idempotency key's uniqueness moves to a constraint, dropping the extra
  ``varchar_pattern_ops`` index Django adds for ``unique=True``;
- ``(status, created_at)`` becomes ``created_at`` for listing plus a partial
  ``(status, updated_at)`` over unfinished jobs for the sweeps: a finished row adds
  no entry to a partial index whose condition it no longer meets.
"""

from django.db import migrations, models

import simulations.fields

CHUNK = 500


def _copy(apps, source: str, target: str, convert) -> None:
    Job = apps.get_model("simulations", "SimulationJob")
    rows = Job.objects.exclude(**{f"{source}__isnull": True}).values_list("pk", source)
    for pk, value in rows.iterator(chunk_size=CHUNK):
        Job.objects.filter(pk=pk).update(**{target: convert(value)})


def compress_results(apps, schema_editor) -> None:
    # The historical model's field is a CompressedJSONField: it compresses a dict itself.
    _copy(apps, "legacy_result", "result", lambda document: document)


def decompress_results(apps, schema_editor) -> None:
    _copy(apps, "result", "legacy_result", lambda document: document)


def store_inline_uncompressed(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('ALTER TABLE "simulations_simulationjob" ALTER COLUMN "result" SET STORAGE EXTERNAL')


class Migration(migrations.Migration):
    dependencies = [
        ("simulations", "0003_lz4_toast_compression"),
    ]

    operations = [
        migrations.RenameField(model_name="simulationjob", old_name="result", new_name="legacy_result"),
        migrations.AddField(
            model_name="simulationjob",
            name="result",
            field=simulations.fields.CompressedJSONField(blank=True, null=True),
        ),
        migrations.RunPython(store_inline_uncompressed, migrations.RunPython.noop),
        migrations.RunPython(compress_results, decompress_results),
        migrations.RemoveField(model_name="simulationjob", name="legacy_result"),
        migrations.RemoveIndex(model_name="simulationjob", name="job_status_created"),
        migrations.AlterField(
            model_name="simulationjob",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddConstraint(
            model_name="simulationjob",
            constraint=models.UniqueConstraint(fields=("idempotency_key",), name="job_idempotency_key_unique"),
        ),
        migrations.AddIndex(
            model_name="simulationjob",
            index=models.Index(fields=["created_at"], name="job_created"),
        ),
        migrations.AddIndex(
            model_name="simulationjob",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "running"])),
                fields=["status", "updated_at"],
                name="job_unfinished",
            ),
        ),
    ]
