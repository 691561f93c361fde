"""The Celery app `incidencias` (`celery -A incidencias worker`)."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incidencias.settings")

app = Celery("incidencias")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_FILESYSTEM_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


@app.on_after_configure.connect
def _make_embedded_folders(sender, **kwargs):
    """Create the folders of the embedded broker and result store before anyone uses them.

    kombu's filesystem transport and Celery's file:// backend expect their folders to exist:
    without them the worker dies at start and `delay()` fails, in every process that
    configures the app first (web, worker, beat, a shell).
    """
    conf = sender.conf
    if str(conf.broker_url or "").startswith("filesystem://"):
        options = conf.broker_transport_options or {}
        for name in _FILESYSTEM_FOLDERS:
            if options.get(name):
                Path(options[name]).mkdir(parents=True, exist_ok=True)
    backend = str(conf.result_backend or "")
    if backend.startswith("file://"):
        path = backend.removeprefix("file://").removeprefix("localhost")
        Path(path).mkdir(parents=True, exist_ok=True)
