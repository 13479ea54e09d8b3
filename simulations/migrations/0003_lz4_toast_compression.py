"""Compress large JSON columns with lz4 instead of pglz (PostgreSQL 14+).

Results are a few KB each, so they are stored out of line (TOAST) and compressed on
every write; pglz made that compression the largest cost of writing a finished job
(``benchmarks/batch_writes.py``: about 3x slower). lz4 is several times faster at a
similar ratio. Only new values are affected; SQLite has nothing to change.
"""

from django.db import migrations

COLUMNS = [
    ("simulations_simulationjob", "result"),
    ("simulations_simulationjob", "input_data"),
    ("simulations_eventoutbox", "payload"),
]


def compression(method):
    def apply(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or connection.pg_version < 140000:
            return
        for table, column in COLUMNS:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')

    return apply


class Migration(migrations.Migration):
    dependencies = [("simulations", "0002_scheduled_run_date")]
    operations = [migrations.RunPython(compression("lz4"), compression("pglz"))]
