"""Admin actions change things (rotate a secret, resend mail, poll a mailbox): a staff member
who may only view a list never sees them; one with the model's change permission does."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from sso.models import Usuario

ACCIONES = [
    ("sso", "consumidorapi", ["rotar", "revocar"]),
    ("sso", "dispositivo", ["revocar"]),
    ("sso", "tokenusuario", ["revocar"]),
    ("webhooks", "canalsynology", ["enviar_prueba"]),
    ("incidencias", "cuentacorreo", ["sondear_ahora", "releer_desde_el_inicio"]),
    ("incidencias", "correofallido", ["reprocesar"]),
    ("incidencias", "notificacion", ["reintentar"]),
]


def acciones_visibles(client, app, modelo) -> set[str]:
    response = client.get(reverse(f"admin:{app}_{modelo}_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is left
    return {valor for valor, _ in form.fields["action"].choices if valor} if form else set()


@pytest.mark.parametrize(("app", "modelo", "acciones"), ACCIONES)
def test_it_shows_actions_only_to_staff_who_may_change(db, client, app, modelo, acciones):
    staff = Usuario.objects.create_user(username="lector", password="x", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label=app, codename=f"view_{modelo}")
    )
    client.force_login(staff)
    assert acciones_visibles(client, app, modelo).isdisjoint(acciones)

    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label=app, codename=f"change_{modelo}")
    )
    staff = Usuario.objects.get(pk=staff.pk)  # permissions are cached on the instance
    client.force_login(staff)
    assert set(acciones) <= acciones_visibles(client, app, modelo)
