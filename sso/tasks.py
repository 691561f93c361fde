from celery import shared_task

from .bitacora import bitacora_podar


@shared_task(name="sso.podar_bitacora")
def podar_bitacora_task() -> int:
    return bitacora_podar()
