"""Permissions kept in the cache between requests (sso.permisos.PermisosEnCache): read once,
then without a query, and read again at once after any change that can alter them."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from sso.models import Usuario

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("backend"),
]

VER = "credenciales.view_credencial"


@pytest.fixture
def backend():
    with override_settings(
        AUTHENTICATION_BACKENDS=["sso.permisos.PermisosEnCache"], PERMISSIONS_CACHE=True
    ):
        yield


def fresco(usuario) -> Usuario:
    """The user as the next request loads it (no permissions remembered on the object)."""
    return Usuario.objects.get(pk=usuario.pk)


def permiso(nombre=VER) -> Permission:
    app, codename = nombre.split(".")
    return Permission.objects.get(content_type__app_label=app, codename=codename)


@pytest.fixture
def ana():
    return Usuario.objects.create_user(username="ana", password="x")


def test_a_second_request_asks_no_query(ana):
    ana.user_permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    usuario = fresco(ana)
    with CaptureQueriesContext(connection) as consultas:
        assert usuario.has_perm(VER)
        assert not usuario.has_perm("credenciales.delete_credencial")
    assert len(consultas) == 0


def test_a_permission_granted_or_taken_counts_at_once(ana):
    assert not fresco(ana).has_perm(VER)
    ana.user_permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    ana.user_permissions.remove(permiso())
    assert not fresco(ana).has_perm(VER)
    ana.user_permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    ana.user_permissions.clear()
    assert not fresco(ana).has_perm(VER)


def test_groups_and_their_permissions_count_at_once(ana):
    grupo = Group.objects.create(name="Bóveda")
    grupo.permissions.add(permiso())
    assert not fresco(ana).has_perm(VER)
    ana.groups.add(grupo)
    assert fresco(ana).has_perm(VER)
    grupo.permissions.remove(permiso())
    assert not fresco(ana).has_perm(VER)
    grupo.permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    permiso().group_set.remove(grupo)  # from the permission's side of the relation
    assert not fresco(ana).has_perm(VER)
    grupo.permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    grupo.delete()
    assert not fresco(ana).has_perm(VER)


def test_inactive_users_have_none_and_superusers_all(ana):
    ana.user_permissions.add(permiso())
    assert fresco(ana).has_perm(VER)
    Usuario.objects.filter(pk=ana.pk).update(is_active=False)  # no signal: read from the row
    assert not fresco(ana).has_perm(VER)
    Usuario.objects.filter(pk=ana.pk).update(is_active=True, is_superuser=True)
    assert fresco(ana).has_perm("credenciales.delete_credencial")
    Usuario.objects.filter(pk=ana.pk).update(is_superuser=False)
    assert not fresco(ana).has_perm("credenciales.delete_credencial")
    assert fresco(ana).has_perm(VER)


def test_a_change_rolled_back_leaves_the_old_permissions(ana):
    from django.db import transaction

    assert not fresco(ana).has_perm(VER)
    with pytest.raises(RuntimeError), transaction.atomic():
        ana.user_permissions.add(permiso())
        assert fresco(ana).has_perm(VER)  # inside the transaction, the new rows
        raise RuntimeError
    assert not fresco(ana).has_perm(VER)


def test_a_change_around_the_managers_counts_once_invalidated(ana):
    """Django sends no signal for a queryset of a link table: `invalidar()` after one."""
    from sso.permisos import invalidar

    grupo = Group.objects.create(name="Bóveda")
    grupo.permissions.add(permiso())
    ana.groups.add(grupo)
    assert fresco(ana).has_perm(VER)
    Usuario.groups.through.objects.filter(usuario=ana).delete()
    invalidar()
    assert not fresco(ana).has_perm(VER)


def test_without_the_setting_the_database_is_read_every_time(ana):
    ana.user_permissions.add(permiso())
    with override_settings(PERMISSIONS_CACHE=False):
        assert fresco(ana).has_perm(VER)
        usuario = fresco(ana)
        with CaptureQueriesContext(connection) as consultas:
            assert usuario.has_perm(VER)
        assert len(consultas) == 2  # ModelBackend's: the user's and their groups'


def test_a_cache_that_does_not_answer_is_not_an_error(ana):
    """Redis down (nothing listens on the port): permissions come from the database, and a
    change is still saved."""
    from django.core.cache import caches

    ana.user_permissions.add(permiso())
    caido = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=caido):
        try:
            assert fresco(ana).has_perm(VER)
            ana.user_permissions.remove(permiso())  # the signal cannot reach the cache
            assert not fresco(ana).has_perm(VER)
        finally:
            caches["default"].close()
