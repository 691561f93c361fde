"""A Synology stand-in registered per test (the real channel lives in `webhooks`)."""

import pytest

from incidencias import notificaciones
from incidencias.models import Ticket
from sso.models import Usuario


class CanalDePrueba:
    """Records what it is given; `fallos` is a list of exceptions raised on the next calls."""

    def __init__(self, nombre="synology"):
        self.nombre = nombre
        self.enviadas = []
        self.fallos = []

    def enviar(self, notificacion):
        if self.fallos:
            raise self.fallos.pop(0)
        self.enviadas.append(notificacion.pk)
        return f"Enviada a {notificacion.destino}"


@pytest.fixture
def synology():
    antes = dict(notificaciones._canales)
    canal = CanalDePrueba()
    notificaciones.canal_registrar(canal)
    yield canal
    notificaciones._canales.clear()
    notificaciones._canales.update(antes)


@pytest.fixture
def correo_de_prueba(synology):
    """An email stand-in, for tests about routing rather than mail."""
    canal = CanalDePrueba("correo")
    notificaciones.canal_registrar(canal)
    return canal


@pytest.fixture
def asignado(soporte):
    return Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password="x",
        departamento=soporte,
        acceso_ticket=True,
        id_synology=41,
    )


@pytest.fixture
def jefa(soporte):
    return Usuario.objects.create_user(
        username="jefa",
        email="jefa@example.com",
        password="x",
        departamento=soporte,
        jefe=True,
        id_synology=42,
    )


@pytest.fixture
def ticket(soporte, asignado):
    return Ticket.objects.create(
        numero=132,
        asunto="No hay internet",
        departamento=soporte,
        asignado=asignado,
        solicitante_nombre="Cliente",
        solicitante_email="cliente@example.org",
    )
