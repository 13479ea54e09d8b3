"""WSGI entry point (gunicorn montecarlo.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "montecarlo.settings")
application = get_wsgi_application()
