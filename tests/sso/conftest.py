"""Fixtures of the identity tests: a real SMTP server (aiosmtpd) that keeps what it receives."""

import email
import socket
import threading
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings


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
