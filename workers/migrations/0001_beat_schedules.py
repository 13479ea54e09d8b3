"""Create the beat schedules (workers/schedules.py) in django-celery-beat's tables."""

from django.db import migrations


def create(apps, schema_editor):
    from workers.schedules import ensure_schedules

    ensure_schedules(apps.get_model)


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
