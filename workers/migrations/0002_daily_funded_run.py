"""Add the daily funded-account run to the beat schedules."""

from django.db import migrations


def create(apps, schema_editor):
    from workers.schedules import ensure_schedules

    ensure_schedules(apps.get_model)


class Migration(migrations.Migration):
    dependencies = [("workers", "0001_beat_schedules")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
