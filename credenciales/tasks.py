from celery import shared_task

from .avisos import credenciales_avisar_vencimientos


@shared_task(name="credenciales.avisar_vencimientos")
def avisar_vencimientos_task() -> int:
    """Reminders of credentials about to expire; beat runs it every
    SCHEDULE_AVISOS_VENCIMIENTO seconds (a day by default)."""
    return credenciales_avisar_vencimientos()
