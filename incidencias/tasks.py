from celery import shared_task

from .imap import sondear_buzones


@shared_task(name="incidencias.ping")
def ping() -> str:
    """A no-op round trip, for health checks of the worker."""
    return "pong"


@shared_task(name="incidencias.sondear_buzones")
def sondear_buzones_task() -> dict:
    """Poll the mailboxes that are due; beat runs it every SCHEDULE_SONDEAR_BUZONES seconds."""
    resumenes = sondear_buzones()
    return {
        "cuentas": len(resumenes),
        "importados": sum(r.importados for r in resumenes),
        "con_error": [r.cuenta.pk for r in resumenes if r.error],
        "omitidas": [r.cuenta.pk for r in resumenes if r.omitida],
    }
