"""A local Synology Chat (pytest-httpserver) that checks the exact requests and answers in
Synology's wire format: `/webapi/entry.cgi?api=SYNO.Chat.External&method=…&version=2&token="…"`,
form field `payload` holding JSON; HTTP 200 with `"success": false` when it refuses."""

import json
import socket

import pytest

from tests.notificaciones.conftest import regla, smtp  # noqa: F401 - shared fixtures
from tests.notificaciones.test_worker import trabajador  # noqa: F401 - shared fixture
from webhooks import synology as transporte

BOT_TOKEN = "bot-secreto-9f8e7d"
CANAL_TOKEN = "canal-secreto-1a2b3c"
PATH = "/webapi/entry.cgi"


def query(metodo: str, token: str) -> dict:
    return {"api": "SYNO.Chat.External", "method": metodo, "version": "2", "token": f'"{token}"'}


def ok_chatbot(*user_ids: int) -> dict:
    """Synology's answer to a chatbot message posted to `user_ids`."""
    mapa = {str(uid): 23059679412324 + uid for uid in user_ids}
    return {"data": {"fail": None, "succ": {"user_id_post_map": mapa}}, "success": True}


def error(codigo: int, errors=None) -> dict:
    cuerpo = {"error": {"code": codigo}, "success": False}
    if errors is not None:
        cuerpo["error"]["errors"] = errors
    return cuerpo


class SynologyLocal:
    def __init__(self, httpserver):
        self.server = httpserver

    def espera(self, metodo: str, *, token: str = BOT_TOKEN, http_method: str | None = None):
        """The handler for one call (`.respond_with_json(...)` etc. on it), used once."""
        return self.server.expect_oneshot_request(
            PATH,
            method=http_method or ("GET" if metodo == "user_list" else "POST"),
            query_string=query(metodo, token),
        )

    def solicitudes(self) -> list:
        return [peticion for peticion, _respuesta in self.server.log]

    def payloads(self) -> list[dict]:
        """The JSON of the `payload` form field of every POST received, in order."""
        salida = []
        for peticion in self.solicitudes():
            if peticion.method == "POST":
                assert peticion.mimetype == "application/x-www-form-urlencoded"
                assert list(peticion.form) == ["payload"]
                salida.append(json.loads(peticion.form["payload"]))
        return salida


@pytest.fixture
def synology(httpserver, settings, monkeypatch):
    settings.SYNOLOGY_URL = httpserver.url_for("/").rstrip("/")
    settings.SYNOLOGY_BOT_TOKEN = BOT_TOKEN
    settings.SYNOLOGY_TIMEOUT = 3
    settings.SYNOLOGY_REINTENTOS = 2
    monkeypatch.setattr(transporte, "ESPERA_BASE", 0)
    local = SynologyLocal(httpserver)
    yield local
    httpserver.check_assertions()


@pytest.fixture
def puerto_cerrado():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
