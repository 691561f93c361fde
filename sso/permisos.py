"""Permissions read from the shared cache between requests.

Every staff page asks `has_perm` (the navigation shows the vault to those who may open it), and
Django's ModelBackend answers with two queries per request (the user's own permissions and
their groups'). `PermisosEnCache` keeps each user's set in the cache under a generation token:
any change that can alter anyone's permissions (a user's permissions or groups, a group's
permissions, a group or permission saved or deleted) draws a new token, so the next request of
every user reads the database again. Whether the user is active or a superuser is read from the
user row as always (and is part of the key). Inside a transaction the database is read, as it
may hold changes not yet committed (or about to roll back). A generation left behind expires
after PERMISSIONS_CACHE_SECONDS.

Only with a cache that every process shares (Redis: REDIS_URL): with a per-process cache, a
change seen by one process would not reach the others. Settings pick the backend.
"""

import uuid

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

CLAVE_GENERACION = "sso:permisos:generacion"


def _generacion() -> str:
    generacion = cache.get(CLAVE_GENERACION)
    if generacion is None:
        cache.add(CLAVE_GENERACION, uuid.uuid4().hex, None)
        generacion = cache.get(CLAVE_GENERACION)
    return generacion


def invalidar(**_kwargs) -> None:
    """A new generation: every user's permissions are read again. After the commit too, so a
    request that read the old rows meanwhile does not keep them."""
    cache.set(CLAVE_GENERACION, uuid.uuid4().hex, None)
    transaction.on_commit(lambda: cache.set(CLAVE_GENERACION, uuid.uuid4().hex, None))


class PermisosEnCache(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if connection.in_atomic_block:
            # A transaction may have changed them (and may yet roll back): its own rows.
            return super().get_all_permissions(user_obj)
        if not hasattr(user_obj, "_perm_cache"):
            clave = f"sso:permisos:{_generacion()}:{user_obj.pk}:{int(user_obj.is_superuser)}"
            permisos = cache.get(clave)
            if permisos is None:
                permisos = super().get_all_permissions(user_obj)
                cache.set(clave, permisos, settings.PERMISSIONS_CACHE_SECONDS)
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
