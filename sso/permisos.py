"""Permissions read from the shared cache between requests.

Every staff page asks `has_perm` (the navigation shows the vault to those who may open it), and
Django's ModelBackend answers with two queries per request (the user's own permissions and
their groups'). `PermisosEnCache` is ModelBackend keeping each user's set in the cache under a
generation token: any change that can alter anyone's permissions (a user's permissions or
groups, a group's permissions, a group or permission saved or deleted, through the ORM) draws a
new token, so the next request of every user reads the database again. Whether the user is
active or a superuser is read from the user row as always (and is part of the key). Inside a
transaction the database is read, as it may hold changes not yet committed (or about to roll
back). A generation left behind expires after PERMISSIONS_CACHE_SECONDS, which also bounds how
long a change made around the relations' managers goes unseen (raw SQL, a restore, a queryset
of the link tables themselves, for which Django sends no signal): call `invalidar()` after one.

The cache is used only when PERMISSIONS_CACHE is on (by default, with REDIS_URL): with a
per-process cache, a change seen by one process would not reach the others. The backend is the
same either way, so turning Redis on or off signs no one out. A cache that does not answer is
not an error: the database is read, and a change that cannot draw its new token is logged.
"""

import logging
import uuid

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

logger = logging.getLogger("incidencias.sso.permisos")

CLAVE_GENERACION = "sso:permisos:generacion"


def _generacion() -> str:
    generacion = cache.get(CLAVE_GENERACION)
    if generacion is None:
        cache.add(CLAVE_GENERACION, uuid.uuid4().hex, None)
        generacion = cache.get(CLAVE_GENERACION)
    return generacion


def _nueva_generacion() -> None:
    try:
        cache.set(CLAVE_GENERACION, uuid.uuid4().hex, None)
    except Exception:
        logger.exception(
            "The permissions cache could not be invalidated: changed permissions may take up"
            " to PERMISSIONS_CACHE_SECONDS to apply"
        )


def invalidar(**_kwargs) -> None:
    """A new generation: every user's permissions are read again. After the commit too, so a
    request that read the old rows meanwhile does not keep them."""
    if not settings.PERMISSIONS_CACHE:
        return
    _nueva_generacion()
    transaction.on_commit(_nueva_generacion, robust=True)


class PermisosEnCache(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not settings.PERMISSIONS_CACHE or connection.in_atomic_block:
            return super().get_all_permissions(user_obj)
        if not hasattr(user_obj, "_perm_cache"):
            try:
                clave = f"sso:permisos:{_generacion()}:{user_obj.pk}:{int(user_obj.is_superuser)}"
                permisos = cache.get(clave)
            except Exception:
                logger.warning("The permissions cache does not answer; reading the database")
                return super().get_all_permissions(user_obj)
            if permisos is None:
                permisos = super().get_all_permissions(user_obj)
                try:
                    cache.set(clave, permisos, settings.PERMISSIONS_CACHE_SECONDS)
                except Exception:
                    logger.warning("The permissions cache does not answer; not kept")
            user_obj._perm_cache = set(permisos)
        return user_obj._perm_cache


def conectar_senales() -> None:
    from django.contrib.auth import get_user_model

    Usuario = get_user_model()
    for relacion in (
        Usuario.user_permissions.through,
        Usuario.groups.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(invalidar, sender=relacion, dispatch_uid=f"permisos-{relacion}")
    for modelo in (Group, Permission):
        post_save.connect(invalidar, sender=modelo, dispatch_uid=f"permisos-guardar-{modelo}")
        post_delete.connect(invalidar, sender=modelo, dispatch_uid=f"permisos-borrar-{modelo}")
