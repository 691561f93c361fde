from celery import shared_task


@shared_task(name="incidencias.ping")
def ping() -> str:
    """A no-op round trip, for health checks of the worker."""
    return "pong"
