"""Settings for bench/ingest.py: the project's own, with Celery tasks kept away from workers.

The environment (DEBUG=0, DATABASE_URL, MEDIA_ROOT, ...) is set by the bench, as a deployment
would set it. The only change: whatever the pipeline enqueues goes to a queue of its own that
no worker reads, so a `make run` worker never delivers benchmark notifications; the bench
counts those tasks and deletes the queue afterwards.
"""

from incidencias.settings import *  # noqa: F403
from incidencias.settings import env

CELERY_TASK_DEFAULT_QUEUE = env.str("BENCH_CELERY_QUEUE", default="incidencias-bench-ingest")
CELERY_TASK_ROUTES = {"*": {"queue": CELERY_TASK_DEFAULT_QUEUE}}
