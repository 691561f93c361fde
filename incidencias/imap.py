"""Polling of IMAP mailboxes: mail on the server becomes tickets through `ingest_flujo`.

Celery beat runs `sondear_buzones` every few seconds; each `CuentaCorreo` is polled when its own
`intervalo_segundos` has passed since its last poll. `manage.py sondear_buzones` runs the same
function in the foreground.

Per folder the poller remembers UIDVALIDITY and the last UID imported (`EstadoCarpeta`), and
never uses sequence numbers. The batches it fetches stream through `ingest_flujo`, which parses
the next batch while the previous one is stored; each batch is committed before anything
happens to its messages on the server, and the last UID advances only after the post-import
action (keep, mark read, move, delete) succeeded. A poll that dies between the two steps reads the
messages again next time; deduplication in the pipeline makes that harmless, and the action is
applied then.

A message over IMAP_MAX_BYTES (by the server's RFC822.SIZE) is never fetched whole: its first
bytes are (a partial FETCH), and go through the pipeline like any other message, kept as its
raw message, with a note on what was left out; then it is marked and passed like the rest.
"""

import contextlib
import ipaddress
import logging
import re
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from imapclient import DELETED, SEEN, IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from .ingest import Lote, ingest_flujo
from .models import CuentaCorreo, EstadoCarpeta

logger = logging.getLogger("incidencias.imap")

# Messages fetched per FETCH, and roughly the most bytes one batch holds. Two batches are in
# memory at once (one stored while the next is fetched and parsed): about 2 x LOTE_BYTES, as
# one batch of 50 MiB was before; a single message over LOTE_BYTES is a batch of its own.
LOTE = 100
LOTE_BYTES = 25 * 1024 * 1024
# Socket timeouts (seconds): establishing the connection, then every read and write.
TIMEOUT = SocketTimeout(connect=20, read=120)
# The lock on a mailbox outlives any poll step: it is renewed after every batch, and a batch
# (100 messages, a FETCH bounded by the read timeout, one ingest per batch, one STORE per
# message) takes well under this. A poller that dies leaves a lock that expires after this long.
CANDADO_SEGUNDOS = 15 * 60
# Beat does not tick on the exact second: a mailbox due within this much is polled now.
_HOLGURA = timedelta(seconds=2)


class ErrorSondeo(Exception):
    """A poll of a mailbox failed; `resumen` holds what it did before failing."""

    def __init__(self, resumen: "ResumenSondeo"):
        super().__init__(resumen.error)
        self.resumen = resumen


class ErrorConfiguracion(Exception):
    """The mailbox is configured in a way the poller refuses (a mailbox error, not a bug)."""


@dataclass
class ResumenCarpeta:
    importados: int = 0
    duplicados: int = 0
    fallidos: int = 0
    error: str = ""


@dataclass
class ResumenSondeo:
    """What one poll of a mailbox did, per folder."""

    cuenta: CuentaCorreo
    carpetas: dict[str, ResumenCarpeta] = field(default_factory=dict)
    error: str = ""
    omitida: bool = False  # another poll held the mailbox's lock

    @property
    def importados(self) -> int:
        return sum(c.importados for c in self.carpetas.values())

    @property
    def duplicados(self) -> int:
        return sum(c.duplicados for c in self.carpetas.values())

    @property
    def fallidos(self) -> int:
        return sum(c.fallidos for c in self.carpetas.values())

    def __str__(self) -> str:
        nombre = f"cuenta {self.cuenta.pk} ({self.cuenta})"
        if self.omitida:
            return f"{nombre}: skipped, another poll of this mailbox is running"
        totales = (
            f"{self.importados} imported, {self.duplicados} duplicates, {self.fallidos} failed"
        )
        if self.error:
            return f"{nombre}: ERROR {self.error} ({totales})"
        carpetas = ", ".join(
            f"{nombre_carpeta} {c.importados}/{c.duplicados}/{c.fallidos}"
            for nombre_carpeta, c in self.carpetas.items()
        )
        return f"{nombre}: {totales} [{carpetas}]"


# --- Entry points ---------------------------------------------------------------------------


def sondear_buzones(
    *, cuenta_id: int | None = None, solo_vencidas: bool = True
) -> list[ResumenSondeo]:
    """Poll the active mailboxes that are due (all of them with `solo_vencidas=False`, or the
    one `cuenta_id`). A mailbox that fails is recorded on its row and never stops the others."""
    # The password is decrypted when a poll needs it: a row that does not decrypt (a key
    # retired too early) fails its own poll, not the query that loads every mailbox.
    cuentas = (
        CuentaCorreo.objects.filter(estado=CuentaCorreo.Estado.ACTIVO)
        .select_related("departamento")
        .defer("password")
        .order_by("pk")
    )
    if cuenta_id is not None:
        cuentas, solo_vencidas = cuentas.filter(pk=cuenta_id), False
    ahora = timezone.now()
    return [
        _sondear_y_registrar(cuenta)
        for cuenta in cuentas
        if not solo_vencidas or _vencida(cuenta, ahora)
    ]


def sondear_cuenta(*, cuenta: CuentaCorreo) -> ResumenSondeo:
    """Poll every folder of one mailbox once. Raises ErrorSondeo when the mailbox failed (the
    connection, the login, the server, a folder, the database); its `resumen` says what was
    imported before. Returns a summary with `omitida` when another poll holds the lock."""
    resumen = ResumenSondeo(cuenta=cuenta)
    try:
        candado = Candado(cuenta)
        if not candado.adquirir():
            logger.info("Mailbox %s (%s) is being polled elsewhere; skipped", cuenta.pk, cuenta)
            resumen.omitida = True
            return resumen
        try:
            _sondear(cuenta, resumen, candado)
        finally:
            candado.liberar()
    except Exception as exc:
        resumen.error = _describir(exc)
        if _esperado(exc):
            logger.warning("Polling mailbox %s (%s) failed: %s", cuenta.pk, cuenta, resumen.error)
        else:
            logger.exception("Polling mailbox %s (%s) failed", cuenta.pk, cuenta)
        raise ErrorSondeo(resumen) from exc
    errores = [f"{nombre}: {c.error}" for nombre, c in resumen.carpetas.items() if c.error]
    if errores:
        resumen.error = "; ".join(errores)
        logger.warning("Polling mailbox %s (%s) failed: %s", cuenta.pk, cuenta, resumen.error)
        raise ErrorSondeo(resumen)
    return resumen


# --- One mailbox ----------------------------------------------------------------------------


def _sondear_y_registrar(cuenta: CuentaCorreo) -> ResumenSondeo:
    inicio = timezone.now()
    try:
        resumen = sondear_cuenta(cuenta=cuenta)
    except ErrorSondeo as exc:
        resumen = exc.resumen
    except Exception as exc:  # a bug must not stop the other mailboxes either
        logger.exception("Polling mailbox %s (%s) failed", cuenta.pk, cuenta)
        resumen = ResumenSondeo(cuenta=cuenta, error=_describir(exc))
    if resumen.omitida:
        return resumen  # the poll that holds the lock records its own outcome
    campos = {
        "ultimo_sondeo": inicio,
        "ultimo_error": resumen.error,
        "ultimo_error_en": timezone.now() if resumen.error else None,
    }
    try:
        CuentaCorreo.objects.filter(pk=cuenta.pk).update(**campos)
    except Exception:  # the database is down: the error is in the log, the next poll retries
        logger.exception("Could not record the poll of mailbox %s", cuenta.pk)
    else:
        for nombre, valor in campos.items():
            setattr(cuenta, nombre, valor)
    return resumen


def _vencida(cuenta: CuentaCorreo, ahora: datetime) -> bool:
    if cuenta.ultimo_sondeo is None:
        return True
    return cuenta.ultimo_sondeo + timedelta(seconds=cuenta.intervalo_segundos) <= ahora + _HOLGURA


def _sondear(cuenta: CuentaCorreo, resumen: ResumenSondeo, candado: "Candado") -> None:
    accion = accion_tras_importar(cuenta)
    with conectar(cuenta) as cliente:
        cliente.login(cuenta.user, cuenta.password)
        accion.preparar(cliente)
        for carpeta in cuenta.carpetas:
            resumen.carpetas[carpeta] = resumen_carpeta = ResumenCarpeta()
            try:
                _sondear_carpeta(cliente, cuenta, carpeta, accion, resumen_carpeta, candado)
            except IMAPClientAbortError:
                raise  # the connection is gone: no other folder can be read either
            except IMAPClientError as exc:
                # The server refused something in this folder (it was renamed, a flag could
                # not be set): the other folders are still polled.
                resumen_carpeta.error = _describir(exc)


def conectar(cuenta: CuentaCorreo) -> IMAPClient:
    """An IMAP connection as the mailbox's security asks, with timeouts; not logged in."""
    seguridad = cuenta.seguridad
    if seguridad == CuentaCorreo.Seguridad.SSL:
        return IMAPClient(
            cuenta.host, port=cuenta.port, ssl=True, ssl_context=contexto_tls(), timeout=TIMEOUT
        )
    if seguridad == CuentaCorreo.Seguridad.STARTTLS:
        cliente = IMAPClient(cuenta.host, port=cuenta.port, ssl=False, timeout=TIMEOUT)
        try:
            cliente.starttls(contexto_tls())  # fails if the server does not offer it
        except BaseException:
            with contextlib.suppress(Exception):  # the failed handshake may have closed it
                cliente.shutdown()
            raise
        return cliente
    if seguridad == CuentaCorreo.Seguridad.NINGUNA:
        if not es_loopback(cuenta.host):
            raise ErrorConfiguracion(
                f"Plain IMAP (security 'ninguna') is only allowed to a loopback host, "
                f"not {cuenta.host!r}: the password would cross the network in clear."
            )
        return IMAPClient(cuenta.host, port=cuenta.port, ssl=False, timeout=TIMEOUT)
    raise ErrorConfiguracion(f"Unknown security {seguridad!r}.")


def contexto_tls() -> ssl.SSLContext:
    """The TLS context of IMAPS and STARTTLS: the system's CAs, host names checked."""
    return ssl.create_default_context()


def es_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or the literal name localhost; other names are not resolved."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sondear_carpeta(cliente, cuenta, carpeta, accion, resumen, candado) -> None:
    estado_select = cliente.select_folder(carpeta)
    if estado_select.get(b"READ-ONLY") and not isinstance(accion, Conservar):
        raise IMAPClientError(f"{carpeta} is read-only: the post-import action cannot run")
    uidvalidity = int(estado_select[b"UIDVALIDITY"])
    estado, _ = EstadoCarpeta.objects.get_or_create(cuenta=cuenta, carpeta=carpeta)
    if estado.uidvalidity != uidvalidity:
        if estado.uidvalidity is not None:
            logger.warning(
                "UIDVALIDITY of %s/%s changed from %s to %s: reading the folder again "
                "(mail already imported is recognised as duplicate)",
                cuenta,
                carpeta,
                estado.uidvalidity,
                uidvalidity,
            )
        estado.uidvalidity, estado.ultimo_uid = uidvalidity, 0
        estado.save(update_fields=["uidvalidity", "ultimo_uid"])

    # `N:*` always includes the highest UID, even when it is below N.
    uids = sorted(
        uid
        for uid in cliente.search(["UID", f"{estado.ultimo_uid + 1}:*"])
        if uid > estado.ultimo_uid
    )
    tamanos = _tamanos(cliente, uids)
    # Each batch comes back once committed (or kept as CorreoFallido rows); a database error
    # raises, and then nothing of that batch or after it is touched on the server: the
    # messages stay for the next poll. The next batch is fetched and parsed meanwhile.
    lotes = _descargar(cliente, uids, tamanos)
    with contextlib.closing(ingest_flujo(lotes, cuenta=cuenta, carpeta=carpeta)) as flujo:
        for lote, resultados in flujo:
            for uid, resultado, completo in zip(lote.uids, resultados, lote.tamanos, strict=True):
                if resultado.fallido is not None:
                    resumen.fallidos += 1
                elif resultado.duplicado:
                    resumen.duplicados += 1
                else:
                    resumen.importados += 1
                if completo is not None and isinstance(accion, Mover | Eliminar):
                    # Only its start was read: the whole message stays where it is on the
                    # server (its ticket's note says it was cut), never moved or deleted.
                    logger.warning(
                        "%s/%s UID %s was read only in part (%s bytes); left on the server",
                        cuenta,
                        carpeta,
                        uid,
                        completo,
                    )
                else:
                    accion.aplicar(cliente, uid)
                EstadoCarpeta.objects.filter(pk=estado.pk).update(ultimo_uid=uid)
            candado.renovar()
            del lote, resultados  # not held while the batch after next is fetched


def _descargar(cliente: IMAPClient, uids: list[int], tamanos: dict[int, int]) -> Iterator[Lote]:
    """The messages in batches (`_lotes`), each read with one FETCH (a message over
    IMAP_MAX_BYTES: only its start, see `_inicio`)."""
    maximo = settings.IMAP_MAX_BYTES
    for lote in _lotes(uids, tamanos, maximo):
        enteros = [uid for uid in lote if tamanos[uid] <= maximo]
        respuesta = cliente.fetch(enteros, ["BODY.PEEK[]"]) if enteros else {}
        leidos, raws, completos = [], [], []
        for uid in lote:
            tamano_completo = None
            if tamanos[uid] > maximo:
                # Never loaded whole: its start is read, kept and ingested, with a note.
                raw, tamano_completo = _inicio(cliente, uid, maximo), tamanos[uid]
                if raw is None:
                    continue  # expunged by another client since the SEARCH
            else:
                datos = respuesta.get(uid)
                if datos is None:
                    continue  # expunged by another client since the SEARCH
                raw = datos.get(b"BODY[]")
                if raw is None:
                    raise IMAPClientError(f"UID {uid}: the server returned no body")
            leidos.append(uid)
            raws.append(raw)
            completos.append(tamano_completo)
        del respuesta
        yield Lote(raws, uids=leidos, tamanos=completos)


def _inicio(cliente: IMAPClient, uid: int, maximo: int) -> bytes | None:
    """The first bytes of a message over IMAP_MAX_BYTES: as many as the pipeline ingests."""
    leer = max(1, min(settings.INGEST_MAX_BYTES, maximo))
    datos = cliente.fetch([uid], [f"BODY.PEEK[]<0.{leer}>"]).get(uid)
    if datos is None:
        return None
    raw = datos.get(b"BODY[]<0>")
    if raw is None:
        raise IMAPClientError(f"UID {uid}: the server returned no body")
    return raw[:leer]


def _tamanos(cliente: IMAPClient, uids: list[int]) -> dict[int, int]:
    """RFC822.SIZE of each message still there, by UID."""
    tamanos = {}
    for i in range(0, len(uids), 500):
        for uid, datos in cliente.fetch(uids[i : i + 500], ["RFC822.SIZE"]).items():
            tamanos[uid] = int(datos.get(b"RFC822.SIZE") or 0)
    return tamanos


def _lotes(uids: list[int], tamanos: dict[int, int], maximo: int) -> Iterator[list[int]]:
    """The UIDs in order, in batches of at most LOTE messages and about LOTE_BYTES (a message
    over `maximo` counts as the part of it that is read)."""
    lote, total = [], 0
    for uid in uids:
        if uid not in tamanos:
            continue
        tamano = min(tamanos[uid], maximo)
        if lote and (len(lote) >= LOTE or total + tamano > LOTE_BYTES):
            yield lote
            lote, total = [], 0
        lote.append(uid)
        total += tamano
    if lote:
        yield lote


def _describir(exc: BaseException) -> str:
    """One line for `ultimo_error`: the kind of error and the server's words."""
    nombre = type(exc).__name__
    nombre = {"error": "IMAPError", "abort": "IMAPAbort", "readonly": "IMAPReadOnly"}.get(
        nombre, nombre
    )
    texto = _BYTES_REPR.sub(r"\1\2", str(exc))  # imaplib quotes server answers as b'...'
    return f"{nombre}: {texto}"[:2000]


_BYTES_REPR = re.compile(r"""\bb(?:'([^']*)'|"([^"]*)")""")


def _esperado(exc: BaseException) -> bool:
    """Errors of the mailbox (logged as one line) rather than of the program (a traceback)."""
    return isinstance(exc, IMAPClientError | OSError | ErrorConfiguracion)


# --- After import: one small class per action -----------------------------------------------


class Accion:
    """What happens on the server to a message whose entry is committed."""

    def preparar(self, cliente: IMAPClient) -> None:
        """Check, once per poll and before anything is imported, that the action can run."""

    def aplicar(self, cliente: IMAPClient, uid: int) -> None:
        raise NotImplementedError


class Conservar(Accion):
    """Leave the message as it is; the folder's last UID keeps it from being read again."""

    def aplicar(self, cliente, uid):
        pass


class MarcarLeido(Accion):
    def aplicar(self, cliente, uid):
        cliente.add_flags([uid], [SEEN], silent=True)


class Mover(Accion):
    def __init__(self, destino: str, sondeadas: list[str]):
        self.destino = destino
        self.sondeadas = sondeadas

    def preparar(self, cliente):
        # Checked first: a missing folder would otherwise stop the poll at the first message.
        if not self.destino:
            raise ErrorConfiguracion("The mailbox moves imported mail but names no folder.")
        if self.destino in self.sondeadas:
            # Moved mail would come back with a new UID and be moved again, every poll.
            raise ErrorConfiguracion(f"The folder {self.destino!r} is also polled.")
        if not cliente.folder_exists(self.destino):
            raise ErrorConfiguracion(f"The folder {self.destino!r} does not exist.")

    def aplicar(self, cliente, uid):
        if cliente.has_capability("MOVE"):
            cliente.move([uid], self.destino)
        else:
            cliente.copy([uid], self.destino)
            _borrar(cliente, uid)


class Eliminar(Accion):
    def aplicar(self, cliente, uid):
        _borrar(cliente, uid)


def _borrar(cliente: IMAPClient, uid: int) -> None:
    cliente.add_flags([uid], [DELETED], silent=True)
    if cliente.has_capability("UIDPLUS"):
        cliente.uid_expunge([uid])
    else:
        # Without UIDPLUS, EXPUNGE also removes other messages someone flagged \Deleted.
        cliente.expunge()


def accion_tras_importar(cuenta: CuentaCorreo) -> Accion:
    opcion = CuentaCorreo.TrasImportar
    match cuenta.tras_importar:
        case opcion.CONSERVAR:
            return Conservar()
        case opcion.MARCAR_LEIDO:
            return MarcarLeido()
        case opcion.MOVER:
            return Mover(cuenta.carpeta_destino, cuenta.carpetas)
        case opcion.ELIMINAR:
            return Eliminar()
    raise ErrorConfiguracion(f"Unknown post-import action {cuenta.tras_importar!r}.")


# --- The lock -------------------------------------------------------------------------------


def clave_candado(cuenta: CuentaCorreo) -> str:
    return f"imap-lock:{cuenta.pk}"


class Candado:
    """One poll per mailbox at a time, in the shared cache (Redis in production; with the
    local-memory cache it only holds within one process).

    The cache has no compare-and-delete: between our read of the token and the delete, a lock
    that expired could be taken by another poll and deleted by us. Polls renew the lock after
    every batch and it lasts CANDADO_SEGUNDOS, far longer than a batch, so that needs a poll
    stalled for a quarter of an hour."""

    def __init__(self, cuenta: CuentaCorreo):
        self.clave = clave_candado(cuenta)
        self.token = secrets.token_hex(16)

    def adquirir(self) -> bool:
        return cache.add(self.clave, self.token, timeout=CANDADO_SEGUNDOS)

    def renovar(self) -> None:
        if cache.get(self.clave) == self.token:
            cache.touch(self.clave, CANDADO_SEGUNDOS)

    def liberar(self) -> None:
        if cache.get(self.clave) == self.token:
            cache.delete(self.clave)
