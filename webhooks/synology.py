"""The Synology Chat transport: one HTTP helper over `SYNO.Chat.External`.

Every call is `{SYNOLOGY_URL}/webapi/entry.cgi?api=SYNO.Chat.External&method=…&version=2&token="…"`
(the token in double quotes, as Synology's own webhook URLs carry it). Messages are a POST whose
form field `payload` holds JSON: `text`, and `file_url` or (chatbot) `user_ids`.

Synology answers HTTP 200 with `{"success": false, "error": {"code": N, "errors": …}}` when it
refuses: that is a failure like any other. Failures are sorted into passing ones (retry later)
and permanent ones (do not retry). A POST is repeated here, at once, only when Synology surely
did not post it (the connection was refused, or Synology said "too fast"); after a timeout or a
5xx the message may have gone out, so the decision to send again is left to the outbox.

The token is a secret and rides in the query string: no URL or error leaves this module with it.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

# The notification outbox's failure classes, so it tells our failures apart.
from incidencias.notificaciones import ErrorPasajero as _Pasajero
from incidencias.notificaciones import ErrorPermanente as _Permanente

logger = logging.getLogger("webhooks.synology")

API = "SYNO.Chat.External"
VERSION = "2"
REDACTED = "********"

# Synology Chat's error codes (answers with "success": false).
#   100 unknown error · 101 payload empty · 102 API missing (Chat package stopped) ·
#   105 permission / "autoblock" (too many calls) · 117 illegal file name or path ·
#   120 payload malformed · 404 bot or webhook token not valid · 407 record not valid ·
#   409 file too large · 410 message too long · 411 "create post too fast"
CODIGOS_PASAJEROS = frozenset({100, 102, 105, 411})
CODIGOS_PERMANENTES = frozenset({101, 103, 104, 117, 120, 404, 407, 409, 410})
# Refusals after which Synology surely posted nothing: worth another attempt at once.
CODIGOS_REINTENTAR_YA = frozenset({105, 411})
ESPERA_BASE = 1.0  # seconds before the first immediate retry; doubles each time


class ErrorSynology(Exception):
    """What every Synology failure carries: the method, Synology's code, a message without the
    token, and whether Synology surely did nothing (so the call can be repeated at once)."""

    def __init__(
        self,
        mensaje: str,
        *,
        metodo: str = "",
        codigo: int | None = None,
        sin_entregar: bool = False,
    ):
        super().__init__(mensaje)
        self.metodo = metodo
        self.codigo = codigo
        self.sin_entregar = sin_entregar


class ErrorPasajero(ErrorSynology, _Pasajero):
    """A passing failure (timeout, 5xx, connection refused, Synology busy): retry later."""


class ErrorPermanente(ErrorSynology, _Permanente):
    """A permanent failure (bad token, unknown user, 4xx): do not retry."""


@dataclass
class Respuesta:
    """Synology's JSON answer to a successful call."""

    metodo: str
    cuerpo: dict = field(default_factory=dict)

    @property
    def data(self) -> dict:
        data = self.cuerpo.get("data")
        return data if isinstance(data, dict) else {}


def _token_en_query(token: str) -> str:
    return quote(f'"{token}"', safe="")


def url(metodo: str, token: str) -> str:
    base = settings.SYNOLOGY_URL.rstrip("/")
    return (
        f"{base}/webapi/entry.cgi?api={API}&method={quote(metodo, safe='')}"
        f"&version={VERSION}&token={_token_en_query(token)}"
    )


def redactar(texto: str, token: str) -> str:
    """`texto` without `token` in any form it can take in a URL or a message."""
    texto = str(texto)
    if not token:
        return texto
    for forma in {token, quote(token, safe=""), quote(token), _token_en_query(token)}:
        if forma:
            texto = texto.replace(forma, REDACTED)
    return texto


def _error_de_synology(metodo: str, cuerpo: dict) -> ErrorSynology:
    error = cuerpo.get("error") if isinstance(cuerpo.get("error"), dict) else {}
    codigo = error.get("code")
    codigo = codigo if isinstance(codigo, int) else None
    detalle = error.get("errors")
    detalle = json.dumps(detalle, ensure_ascii=False)[:200] if detalle is not None else ""
    mensaje = f"Synology {metodo}: error {codigo}" + (f" {detalle}" if detalle else "")
    if codigo in CODIGOS_PERMANENTES:
        return ErrorPermanente(mensaje, metodo=metodo, codigo=codigo)
    # Unknown codes are retried: the outbox's bounded attempts end them.
    return ErrorPasajero(
        mensaje, metodo=metodo, codigo=codigo, sin_entregar=codigo in CODIGOS_REINTENTAR_YA
    )


def _sin_conectar(exc: requests.ConnectionError) -> bool:
    """True when no connection was made (refused, unresolvable, connect timeout): nothing can
    have reached Synology. A connection dropped mid-answer may have posted the message."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    razon = exc.args[0] if exc.args else None
    razon = getattr(razon, "reason", razon)
    return isinstance(razon, NewConnectionError | ConnectTimeoutError)


def _una_vez(metodo: str, token: str, payload: dict | None) -> Respuesta:
    """One request; a failure raised as ErrorPasajero or ErrorPermanente (token redacted)."""
    destino = url(metodo, token)
    timeout = settings.SYNOLOGY_TIMEOUT
    verify = settings.SYNOLOGY_VERIFICAR_TLS
    try:
        if payload is None:
            respuesta = requests.get(destino, timeout=timeout, verify=verify)
        else:
            texto = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            respuesta = requests.post(
                destino, data={"payload": texto}, timeout=timeout, verify=verify
            )
    except requests.ConnectionError as exc:
        raise ErrorPasajero(
            f"Synology {metodo}: {redactar(exc, token)}"[:500],
            metodo=metodo,
            sin_entregar=_sin_conectar(exc),
        ) from None
    except requests.Timeout:
        raise ErrorPasajero(
            f"Synology {metodo}: no answer within {timeout:g} s", metodo=metodo
        ) from None
    except requests.RequestException as exc:
        raise ErrorPermanente(
            f"Synology {metodo}: {redactar(exc, token)}"[:500], metodo=metodo
        ) from None

    estado = respuesta.status_code
    if estado >= 500 or estado in (408, 429):
        # 429 and 503 are refusals: nothing was posted.
        raise ErrorPasajero(
            f"Synology {metodo}: HTTP {estado}", metodo=metodo, sin_entregar=estado in (429, 503)
        )
    if estado >= 400:
        raise ErrorPermanente(f"Synology {metodo}: HTTP {estado}", metodo=metodo)
    try:
        cuerpo = respuesta.json()
    except ValueError:
        raise ErrorPasajero(
            f"Synology {metodo}: HTTP {estado} without a JSON answer", metodo=metodo
        ) from None
    if not isinstance(cuerpo, dict) or cuerpo.get("success") is not True:
        raise _error_de_synology(metodo, cuerpo if isinstance(cuerpo, dict) else {})
    return Respuesta(metodo=metodo, cuerpo=cuerpo)


def llamar(metodo: str, *, token: str, payload: dict | None = None) -> Respuesta:
    """Call `method=metodo` (POST with `payload`, or GET without), with bounded retries.

    A passing failure is tried again at once (waiting 1 s, 2 s, …) only when Synology surely
    did not act on it, or when the call reads nothing (GET); at most SYNOLOGY_REINTENTOS times.
    """
    if not settings.SYNOLOGY_URL:
        raise ErrorPermanente("SYNOLOGY_URL is not set", metodo=metodo)
    if not token:
        raise ErrorPermanente(f"Synology {metodo}: no token", metodo=metodo)
    intentos = 1 + max(settings.SYNOLOGY_REINTENTOS, 0)
    for intento in range(1, intentos + 1):
        try:
            return _una_vez(metodo, token, payload)
        except ErrorPasajero as exc:
            repetible = payload is None or exc.sin_entregar
            if not repetible or intento == intentos:
                logger.warning("%s (attempt %d of %d)", exc, intento, intentos)
                raise
            logger.info("%s; trying again (attempt %d of %d)", exc, intento, intentos)
            time.sleep(ESPERA_BASE * 2 ** (intento - 1))
        except ErrorPermanente as exc:
            logger.warning("%s", exc)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def enviar_a_canal(*, token: str, texto: str, file_url: str = "") -> Respuesta:
    """Post `texto` to the channel of an incoming webhook (`method=incoming`)."""
    payload = {"text": texto}
    if file_url:
        payload["file_url"] = file_url
    return llamar("incoming", token=token, payload=payload)


def enviar_a_usuarios(*, user_ids: list[int], texto: str, file_url: str = "") -> Respuesta:
    """Send `texto` to people through the bot (`method=chatbot`, SYNOLOGY_BOT_TOKEN)."""
    payload = {"text": texto, "user_ids": [int(uid) for uid in user_ids]}
    if file_url:
        payload["file_url"] = file_url
    return llamar("chatbot", token=settings.SYNOLOGY_BOT_TOKEN, payload=payload)


def entregados(respuesta: Respuesta) -> set[int] | None:
    """The user ids a chatbot answer says it posted to; None when it does not say (older
    versions answer a bare `{"success": true}`)."""
    succ = respuesta.data.get("succ")
    fail = respuesta.data.get("fail")
    mapa = succ.get("user_id_post_map") if isinstance(succ, dict) else None
    if not isinstance(mapa, dict):
        return set() if fail else None
    ids = set()
    for clave in mapa:
        try:
            ids.add(int(clave))
        except (TypeError, ValueError):
            continue
    return ids


def usuarios_del_bot() -> list[dict]:
    """The people the bot can write to (`method=user_list`): dicts with at least `user_id` and
    `username`; deleted accounts left out."""
    respuesta = llamar("user_list", token=settings.SYNOLOGY_BOT_TOKEN)
    usuarios = respuesta.data.get("users")
    return [
        u
        for u in (usuarios if isinstance(usuarios, list) else [])
        if isinstance(u, dict) and isinstance(u.get("user_id"), int) and not u.get("deleted")
    ]
