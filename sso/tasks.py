from celery import shared_task

from .adi import solicitud_adi_podar
from .bitacora import bitacora_podar
from .oauth import oauth_limpiar


@shared_task(name="sso.podar_bitacora")
def podar_bitacora_task() -> int:
    return bitacora_podar()


@shared_task(name="sso.podar_solicitudes_adi")
def podar_solicitudes_adi_task() -> int:
    return solicitud_adi_podar()


@shared_task(name="sso.limpiar_tokens_oauth")
def limpiar_tokens_oauth_task() -> int:
    return oauth_limpiar()
