"""The Celery app `incidencias` (`celery -A incidencias worker`)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incidencias.settings")

app = Celery("incidencias")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
