"""Who has a ticket's page open: one cache entry per ticket (Redis in production) holding its
viewers and when each was last seen, refreshed by the page's poll. Nothing is written to the
database, and an entry left alone expires on its own.

Two viewers refreshing at the same instant may overwrite each other's mark; the next poll
(`PRESENCIA_SEGUNDOS` apart at most) puts it back, so a notice is late by one poll at worst.
"""

import secrets
import time

from django.conf import settings
from django.core.cache import cache


def _clave(ticket_id: int) -> str:
    return f"presencia:ticket:{ticket_id}"


def _vigencia() -> int:
    """Seconds a viewer counts as present after their last poll: a poll lost on the way (a
    slow network) does not make them disappear."""
    return settings.PRESENCIA_SEGUNDOS * 2 + 5


def vista_nueva() -> str:
    """An id for one view of the page (one load in one tab): its poll and its leave beacon
    carry it."""
    return secrets.token_urlsafe(9)


def _leer(ticket_id: int) -> dict:
    """{user id: (name, last seen, view id)}; an entry written before views had ids has none."""
    return {
        uid: (valor[0], valor[1], valor[2] if len(valor) > 2 else "")
        for uid, valor in (cache.get(_clave(ticket_id)) or {}).items()
    }


def presencia_marcar(*, ticket_id: int, usuario, vista: str = "") -> list[str]:
    """Note that `usuario` has the ticket open now, in the page view `vista`; return the names
    of the others who have it open, sorted."""
    ahora = time.time()
    vigencia = _vigencia()
    vigentes = {
        uid: valor for uid, valor in _leer(ticket_id).items() if valor[1] > ahora - vigencia
    }
    nombre = usuario.nombre_visible
    vigentes[usuario.pk] = (nombre, ahora, vista)
    cache.set(_clave(ticket_id), vigentes, timeout=vigencia)
    return sorted(valor[0] for uid, valor in vigentes.items() if uid != usuario.pk)


def presencia_salir(*, ticket_id: int, usuario, vista: str) -> bool:
    """Forget `usuario` on the ticket when the view that left is the one that marked them last.
    A reload, or a form sent from the page, loads the next view before the old one says it
    left: that view's mark stays. Whether the mark was removed."""
    visitas = _leer(ticket_id)
    marca = visitas.get(usuario.pk)
    if marca is None or not vista or marca[2] != vista:
        return False
    del visitas[usuario.pk]
    cache.set(_clave(ticket_id), visitas, timeout=_vigencia())
    return True
