"""Notices to people, for apps that may not import the notification outbox.

The outbox lives in `incidencias` (`incidencias.notificaciones`), which depends on `sso`; the
vault (`credenciales`) depends on `sso` only. So the outbox registers its generic path here when
it starts (`IncidenciasConfig.ready`), and the vault calls `avisar`. Same guarantees as any
outbox row: written in the caller's transaction, delivered by a worker with retries, at most
once per `unico`.
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

_entrega: Callable | None = None


def registrar(funcion: Callable) -> None:
    """Set the function that writes notices (`avisar_personas(*, usuarios, asunto, texto,
    datos, unico)`)."""
    global _entrega
    _entrega = funcion


def avisar(*, usuarios, asunto: str, texto: str, datos: dict | None = None, unico: str) -> list:
    """Write a notice by email to each of `usuarios`, once per `unico`; the rows written."""
    if _entrega is None:
        raise ImproperlyConfigured("No notification outbox is installed (INSTALLED_APPS).")
    return _entrega(usuarios=usuarios, asunto=asunto, texto=texto, datos=datos, unico=unico)
