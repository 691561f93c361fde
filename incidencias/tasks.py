from celery import shared_task

from . import notificaciones, sla
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


@shared_task(name="incidencias.entregar_notificacion", ignore_result=True)
def entregar_notificacion_task(pk: int) -> str:
    """Deliver one outbox row (idempotent: a second run finds it claimed or sent)."""
    return notificaciones.notificacion_entregar(pk=pk)


@shared_task(name="incidencias.entregar_notificaciones", ignore_result=True)
def entregar_notificaciones_task(pks: list[int]) -> None:
    """Deliver a batch of outbox rows one after the other (raised together by the SLA sweep)."""
    for pk in pks:
        notificaciones.notificacion_entregar(pk=pk)


@shared_task(name="incidencias.barrer_notificaciones")
def barrer_notificaciones_task() -> int:
    """Re-queue notifications whose task was lost; beat runs it every
    SCHEDULE_BARRER_NOTIFICACIONES seconds."""
    return notificaciones.notificaciones_barrer()


@shared_task(name="incidencias.barrer_sla")
def barrer_sla_task() -> dict:
    """Raise SLA warnings and breaches that are due; beat runs it every SCHEDULE_BARRER_SLA
    seconds."""
    barrido = sla.sla_barrer()
    return {"avisos": barrido.avisos, "incumplidos": barrido.incumplidos}
