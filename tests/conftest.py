import email
import os
import socket
import threading
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from incidencias import configuracion
from sso import consumidores
from sso.models import Departamento, Usuario

# In CI every test must run: a skip (a service missing) is turned into a failure.
NO_SKIPS = os.environ.get("TESTS_FAIL_ON_SKIP") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, and TESTS_FAIL_ON_SKIP=1 forbids skips: {reason}"


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Per-process caches of configuration never outlive a test's rolled-back rows."""
    consumidores.forget_all()
    configuracion.olvidar()
    yield
    consumidores.forget_all()
    configuracion.olvidar()


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    return connection


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs Redis (set REDIS_URL)")
    return url


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def soporte(db):
    return Departamento.objects.create(nombre="Soporte")


@pytest.fixture
def redes(db):
    return Departamento.objects.create(nombre="Redes")


@pytest.fixture
def agente(soporte):
    return Usuario.objects.create_user(
        username="agente", email="agente@example.com", password="x", departamento=soporte
    )


@pytest.fixture
def make_consumer(db):
    """Create a consumer; returns (consumer, headers) for APIClient calls."""

    def make(nombre="lector", permisos=("usuarios",)):
        consumidor, secret = consumidores.consumidor_crear(nombre=nombre, permisos=list(permisos))
        return consumidor, {"HTTP_X_USER_CONSUMO": nombre, "HTTP_X_USER_SECRET": secret}

    return make


@pytest.fixture
def consumer(make_consumer):
    return make_consumer()


# --- A real SMTP server (aiosmtpd) that keeps what it receives (2FA codes, mail) -------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        with self.lock:
            self.messages.append(
                (
                    envelope.rcpt_tos,
                    email.message_from_bytes(envelope.content, policy=policy.default),
                )
            )
        return "250 OK"


@pytest.fixture
def smtp():
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_TIMEOUT=5,
            DEFAULT_FROM_EMAIL="soporte@example.com",
        ):
            yield handler
    finally:
        controller.stop()
