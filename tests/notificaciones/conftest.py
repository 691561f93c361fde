"""A Synology stand-in registered per test (the real channel lives in `webhooks`)."""

import email
import socket
import threading
import uuid
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings

from incidencias import notificaciones
from incidencias.models import ReglaDepartamento, Ticket
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServidorSMTP:
    """aiosmtpd's handler: keeps each message (raw and parsed); `respuestas` are SMTP replies
    given to the next DATA commands instead of accepting ("451 …", "550 …")."""

    def __init__(self):
        self.mensajes = []
        self.respuestas = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        with self.lock:
            if self.respuestas:
                return self.respuestas.pop(0)
            parsed = email.message_from_bytes(envelope.content, policy=policy.default)
            self.mensajes.append((envelope.rcpt_tos, parsed, envelope.content))
        return "250 OK"

    def para(self, direccion):
        return [m for rcpt, m, _ in self.mensajes if direccion in rcpt]


@pytest.fixture
def smtp():
    handler = ServidorSMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_TIMEOUT=5,
            DEFAULT_FROM_EMAIL="Soporte <soporte@example.com>",
        ):
            yield handler
    finally:
        controller.stop()


@pytest.fixture
def regla(soporte):
    """Mail to soporte@example.com goes to the Soporte department."""
    return ReglaDepartamento.objects.create(
        campo="destinatario", valor="soporte@example.com", departamento=soporte
    )


def correo_entrante(
    *,
    de="Cliente <cliente@example.org>",
    asunto="Sin servicio",
    message_id=None,
    extra="",
    cuerpo="No tengo internet desde ayer.",
    para="soporte@example.com",
) -> bytes:
    message_id = message_id or f"<{uuid.uuid4().hex}@example.org>"
    return (
        f"From: {de}\r\nTo: {para}\r\nSubject: {asunto}\r\n"
        f"Message-ID: {message_id}\r\nDate: Tue, 10 Mar 2026 10:00:00 -0600\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{cuerpo}\r\n"
    ).encode()
