"""Who has a ticket's page open: one cache entry per ticket (Redis in production) holding its
viewers and when each was last seen, refreshed by the page's poll. Nothing is written to the
database, and an entry left alone expires on its own.

Two viewers refreshing at the same instant may overwrite each other's mark; the next poll
(`PRESENCIA_SEGUNDOS` apart at most) puts it back, so a notice is late by one poll at worst.
"""

import time

from django.conf import settings
from django.core.cache import cache


def _clave(ticket_id: int) -> str:
    return f"presencia:ticket:{ticket_id}"


def _vigencia() -> int:
    """Seconds a viewer counts as present after their last poll: a poll lost on the way (a
    slow network) does not make them disappear."""
    return settings.PRESENCIA_SEGUNDOS * 2 + 5


def presencia_marcar(*, ticket_id: int, usuario) -> list[str]:
    """Note that `usuario` has the ticket open now; return the names of the others who have it
    open, sorted."""
    ahora = time.time()
    vigencia = _vigencia()
    visitas = cache.get(_clave(ticket_id)) or {}
    vigentes = {
        uid: (nombre, visto) for uid, (nombre, visto) in visitas.items() if visto > ahora - vigencia
    }
    nombre = usuario.nombre or usuario.get_full_name() or usuario.get_username()
    vigentes[usuario.pk] = (nombre, ahora)
    cache.set(_clave(ticket_id), vigentes, timeout=vigencia)
    return sorted(n for uid, (n, _) in vigentes.items() if uid != usuario.pk)


def presencia_salir(*, ticket_id: int, usuario) -> None:
    """Forget `usuario` on the ticket (the page was left)."""
    visitas = cache.get(_clave(ticket_id)) or {}
    if visitas.pop(usuario.pk, None) is not None:
        cache.set(_clave(ticket_id), visitas, timeout=_vigencia())
