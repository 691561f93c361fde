"""The mail pipeline: the only way mail becomes tickets.

The IMAP poller streams the batches of bytes it fetches through `ingest_flujo` (the next batch
is parsed while the previous one is stored); `ingest_lote` takes one batch (`ingest_raw` is a
batch of one); `POST /api/correo/save` builds a `MensajeEntrante` from its JSON and calls
`ingest`. All of them end in `ingest_mensajes`: the messages are parsed first, outside any
transaction; then one transaction per batch deduplicates, recognises machine mail, threads (onto
earlier messages of the same batch too), stores the entries with their attachments, and for
new tickets picks the department and the agent and sets the SLA due dates, while a writer
thread puts the files on disk (the commit waits for them). Its statements run once per batch,
whatever its size.
"""

import contextvars
import functools
import hashlib
import logging
import os
import re
import tempfile
import threading
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import Count, Min, Q
from django.db.models.functions import Lower
from django.utils import timezone

from sso.models import Departamento, Usuario

from . import configuracion, notificaciones, sla
from .mensajes import MensajeEntrante, parse_raw
from .models import (
    Adjunto,
    Asignacion,
    ColaDepartamento,
    CorreoFallido,
    CuentaCorreo,
    DetalleTicket,
    ReglaDepartamento,
    Ticket,
)

logger = logging.getLogger("incidencias.ingest")

NO_EMITIDA = "No emitida"
_TAG = re.compile(r"\[Ticket #(\d{1,18})\]", re.IGNORECASE)
_ABIERTOS = (Ticket.Estado.NUEVO, Ticket.Estado.ABIERTO, Ticket.Estado.EN_ESPERA)


@dataclass
class Resultado:
    """What happened to one message."""

    ticket: Ticket | None = None
    detalle: DetalleTicket | None = None
    creado: bool = False
    duplicado: bool = False
    fallido: CorreoFallido | None = None
    notificacion_synology: str = NO_EMITIDA
    notificacion_correo: str = NO_EMITIDA

    @property
    def mensaje(self) -> str:
        if self.ticket is None:
            return "El correo no generó un ticket y quedó registrado para revisión."
        if self.creado:
            return f"Se ha creado el ticket {self.ticket.numero}"
        return f"Se ha agregado el detalle {self.detalle.pk} al ticket {self.ticket.numero}"


# --- Entry points ---------------------------------------------------------------------------


def ingest_raw(
    raw: bytes,
    *,
    cuenta: CuentaCorreo | None = None,
    fuente: str | None = None,
    carpeta: str = "",
    uid: int | None = None,
    tamano_completo: int | None = None,
) -> Resultado:
    """Ingest one RFC 5322 message: a batch of one (see `ingest_lote`). `tamano_completo`
    says `raw` is only the start of a message that big."""
    return ingest_lote(
        [raw],
        cuenta=cuenta,
        fuente=fuente,
        carpeta=carpeta,
        uids=[uid],
        tamanos=[tamano_completo],
    )[0]


def ingest_lote(
    raws: Sequence[bytes],
    *,
    cuenta: CuentaCorreo | None = None,
    fuente: str | None = None,
    carpeta: str = "",
    uids: Sequence[int | None] | None = None,
    tamanos: Sequence[int | None] | None = None,
) -> list[Resultado]:
    """Ingest RFC 5322 messages in order, one result each, and commit them together.

    Every message is parsed first, outside any transaction; then one transaction stores the
    batch (`ingest_mensajes`). If that fails, the batch is rolled back and each message is
    stored in a transaction of its own, so one bad message never loses or blocks the others.
    Anything that goes wrong with a message is recorded in CorreoFallido with its raw bytes.
    This raises only for a database error while the database is unreachable (nothing of
    the batch is then left half-done: each message is committed whole or not at all), so a
    caller that marks mail on a server after this returns never loses a message.

    `tamanos` gives, per message, the size of the whole message when `raw` is only its start
    (a mailbox message over IMAP_MAX_BYTES; see `parse_raw`)."""
    leido = _leer_lote(Lote(raws, uids=uids, tamanos=tamanos))
    return _guardar_lote(leido, fuente=fuente or _fuente(cuenta), cuenta=cuenta, carpeta=carpeta)


@dataclass
class Lote:
    """A batch of raw messages for `ingest_flujo`: their bytes and, per message, its UID and
    the size of the whole message when the bytes are only its start (see `ingest_lote`)."""

    raws: Sequence[bytes]
    uids: Sequence[int | None] | None = None
    tamanos: Sequence[int | None] | None = None


def ingest_flujo(
    lotes: Iterable[Lote],
    *,
    cuenta: CuentaCorreo | None = None,
    fuente: str | None = None,
    carpeta: str = "",
) -> Iterator[tuple[Lote, list[Resultado]]]:
    """`ingest_lote` over a stream of batches: yields each batch with its results, in order,
    once the batch is committed.

    While a batch is stored (a thread of its own, waiting mostly on the database and the
    disk), the next one is taken from `lotes` and parsed in the calling thread; its storage
    starts only once the previous batch committed, so a reply threads onto a message of the
    batch before it and ticket numbers follow the order of the stream. When storing a batch
    raises (the database is unreachable, see `ingest_lote`), nothing of it or after it is
    yielded or stored, and the error is raised; when `lotes` raises, the batch being stored
    is committed and yielded first. Whatever ends the iteration, no batch is still being
    stored once it has ended: close the generator (`contextlib.closing`) when not
    exhausting it.

    Inside a transaction of the caller's, and on SQLite (one writer at a time), the batches
    are stored in the calling thread, one after the other, with the same results."""
    fuente = fuente or _fuente(cuenta)
    aparte = connection.vendor == "postgresql" and not connection.in_atomic_block
    hilo = futures.ThreadPoolExecutor(1, thread_name_prefix="ingest-lotes") if aparte else None
    lotes = iter(lotes)
    pendiente: tuple[Lote, futures.Future] | None = None  # the batch being stored
    try:
        while True:
            try:
                lote = next(lotes, _FIN)
            except BaseException:
                if pendiente is not None:  # what was read before the source failed
                    (anterior, futuro), pendiente = pendiente, None
                    yield anterior, futuro.result()
                raise
            if lote is _FIN:
                break
            leido = _leer_lote(lote)
            listo = None
            if pendiente is not None:
                (anterior, futuro), pendiente = pendiente, None
                listo = (anterior, futuro.result())  # raises: nothing of it, nor of `lote`
            pendiente = (
                lote,
                _en(hilo, _guardar_lote, leido, fuente=fuente, cuenta=cuenta, carpeta=carpeta),
            )
            if listo is not None:
                yield listo
        if pendiente is not None:
            (anterior, futuro), pendiente = pendiente, None
            yield anterior, futuro.result()
    finally:
        error = pendiente[1].exception() if pendiente is not None else None  # waits for it
        if error is not None:  # the caller stopped first; this batch's mail stays where it is
            logger.warning(
                "A batch of %s mails from %s was not stored either (%s)",
                len(pendiente[0].raws),
                fuente,
                "".join(traceback.format_exception_only(error)).strip()[:500],
            )
        if hilo is not None:
            hilo.submit(_cerrar_conexiones).result()
            hilo.shutdown()


_FIN = object()


def _cerrar_conexiones() -> None:
    """Close this thread's database connections (a thread's own are never closed for it)."""
    try:
        connections.close_all()
    except Exception:  # a connection already broken: nothing more to release
        logger.debug("Closing the connection of a storing thread failed", exc_info=True)


@dataclass
class _Leido:
    """A batch parsed and not yet stored: the messages that parsed, and why the others did not."""

    lote: Lote
    uids: list[int | None]
    piezas: dict[int, "_Pieza"]
    errores: dict[int, BaseException]


def _fuente(cuenta: CuentaCorreo | None) -> str:
    return cuenta.fuente if cuenta else "raw"


def _leer_lote(lote: Lote) -> _Leido:
    """Parse a batch, with the hashes its files will be named by; no database access."""
    uids = list(lote.uids) if lote.uids is not None else [None] * len(lote.raws)
    tamanos = list(lote.tamanos) if lote.tamanos is not None else [None] * len(lote.raws)
    leido = _Leido(lote, uids, {}, {})
    limite, dominio = settings.INGEST_MAX_BYTES, dominio_propio()
    for i, raw in enumerate(lote.raws):
        try:
            mensaje = parse_raw(
                raw, max_bytes=limite, own_domain=dominio, tamano_completo=tamanos[i]
            )
            leido.piezas[i] = _Pieza(mensaje).con_hashes()
        except Exception as exc:
            leido.errores[i] = exc
    return leido


def _guardar_lote(leido: _Leido, *, fuente: str, cuenta, carpeta: str) -> list[Resultado]:
    """Store a parsed batch in one transaction, else message by message (see `ingest_lote`)."""
    raws, piezas, errores = leido.lote.raws, leido.piezas, dict(leido.errores)
    resultados: list[Resultado | None] = [None] * len(raws)
    lote = list(piezas)
    try:
        hechos = _guardar_piezas(list(piezas.values()), fuente=fuente, cuenta=cuenta)
    except Exception as exc:
        _si_base_caida(exc)
        if len(lote) == 1:
            errores[lote[0]] = exc
        else:
            logger.warning(
                "A batch of %s mails from %s failed (%s); storing them one by one",
                len(lote),
                fuente,
                "".join(traceback.format_exception_only(exc)).strip()[:500],
            )
        hechos = [None] * len(lote)
    for i, resultado in zip(lote, hechos, strict=True):
        if resultado is None and i not in errores:
            try:
                resultado = _guardar_piezas([piezas[i]], fuente=fuente, cuenta=cuenta)[0]
            except Exception as exc:
                _si_base_caida(exc)
                errores[i] = exc  # the database refused this mail, or a bug
        resultados[i] = resultado
    for i, error in sorted(errores.items()):
        logger.error(
            "Mail from %s could not be ingested; kept as failed mail", fuente, exc_info=error
        )
        resultados[i] = Resultado(
            fallido=correo_fallido_registrar(
                raw=raws[i],
                motivo=CorreoFallido.Motivo.ERROR,
                error="".join(traceback.format_exception_only(error)).strip()[:4000],
                fuente=fuente,
                cuenta=cuenta,
                carpeta=carpeta,
                uid=leido.uids[i],
            )
        )
    return resultados


def _en(hilo: futures.ThreadPoolExecutor | None, funcion, *args, **kwargs) -> futures.Future:
    """`funcion` run in `hilo` in the caller's context (its language), or here and now."""
    if hilo is not None:
        return hilo.submit(contextvars.copy_context().run, funcion, *args, **kwargs)
    futuro: futures.Future = futures.Future()
    try:
        futuro.set_result(funcion(*args, **kwargs))
    except BaseException as exc:
        futuro.set_exception(exc)
    return futuro


def ingest(
    mensaje: MensajeEntrante,
    *,
    fuente: str,
    cuenta: CuentaCorreo | None = None,
    canal: str = Ticket.Canal.CORREO,
) -> Resultado:
    """Store one normalised message, exactly once per `fuente` and Message-ID."""
    return ingest_mensajes([mensaje], fuente=fuente, cuenta=cuenta, canal=canal)[0]


def ingest_mensajes(
    mensajes: Sequence[MensajeEntrante],
    *,
    fuente: str,
    cuenta: CuentaCorreo | None = None,
    canal: str = Ticket.Canal.CORREO,
) -> list[Resultado]:
    """Store normalised messages in order, in one transaction, each exactly once per `fuente`
    and Message-ID; a reply threads onto a message earlier in the same batch.

    Their files are written (and flushed to disk) by another thread while the transaction
    runs, and the transaction commits only once they are on disk; the statements run per
    batch, not per message. Raises when the batch cannot be stored: nothing of it is then
    committed."""
    piezas = [_Pieza(mensaje.sanear()) for mensaje in mensajes]  # JSON skipped parse_raw
    return _guardar_piezas(piezas, fuente=fuente, cuenta=cuenta, canal=canal)


def _guardar_piezas(
    piezas: list["_Pieza"], *, fuente: str, cuenta, canal: str = Ticket.Canal.CORREO
) -> list[Resultado]:
    """`ingest_mensajes` of messages already normalised."""
    if not piezas:
        return []
    escritura: list[futures.Future] = []  # the files being written, once `_ingest` starts it
    try:
        with transaction.atomic():
            resultados = _ingest(
                piezas, fuente=fuente, cuenta=cuenta, canal=canal, escritura=escritura
            )
            notificaciones.notificar_ingresos(resultados)
            for pendiente in escritura:
                pendiente.result()  # the files are on disk before the rows naming them commit
            return resultados
    except IntegrityError:
        # A concurrent ingest of one of these messages won the race.
        if len(piezas) > 1:
            return [
                _guardar_piezas([p], fuente=fuente, cuenta=cuenta, canal=canal)[0] for p in piezas
            ]
        previo = _duplicados(fuente, {piezas[0].clave}).get(piezas[0].clave)
        if previo is None:
            raise
        return [previo]
    finally:
        futures.wait(escritura)  # never left running past a failed batch


def _si_base_caida(exc: BaseException) -> None:
    """Re-raise a database error when the database is gone: the caller retries later."""
    if isinstance(exc, OperationalError | InterfaceError) and not _base_disponible():
        raise exc


# --- The pipeline ---------------------------------------------------------------------------


class _Pieza:
    """One message of a batch: normalised, with its deduplication key and its files."""

    def __init__(self, mensaje: MensajeEntrante):
        self.mensaje = mensaje
        self.clave = mensaje.clave_dedup()
        self.crudo = ""  # storage name of the raw message, once named
        self.archivos: list[tuple[str, str]] = []  # (sha256, storage name) per attachment
        self.hashes: list[str] | None = None  # of the raw message (if kept), the attachments

    def con_hashes(self) -> "_Pieza":
        """Hash the files now (a stream does it while the batch before is stored)."""
        mensaje = self.mensaje
        contenidos = [] if mensaje.crudo is None else [mensaje.crudo]
        contenidos += [adjunto.contenido for adjunto in mensaje.adjuntos]
        self.hashes = [hashlib.sha256(contenido).hexdigest() for contenido in contenidos]
        return self


@dataclass
class _Hilos:
    """What the batch's threading needs from the database, read once per batch."""

    # Message-ID -> ticket id of the first entry carrying it (any kind of entry).
    primero: dict[str, int] = field(default_factory=dict)
    # Message-ID -> (ticket id, from) of the first inbound entries carrying it.
    entrantes: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # Ticket number (from a subject tag) -> ticket id.
    numeros: dict[int, int] = field(default_factory=dict)
    # Locked tickets by id; new tickets of the batch by a Message-ID they hold.
    tickets: dict[int, Ticket] = field(default_factory=dict)
    en_lote: dict[str, Ticket] = field(default_factory=dict)
    # A closed ticket's id -> the ticket its late replies opened.
    seguimientos: dict[int, Ticket] = field(default_factory=dict)
    # A merged-away ticket's id -> the id of the ticket it was merged into, at the chain's end.
    fusiones: dict[int, int] = field(default_factory=dict)


def _ingest(piezas: list[_Pieza], *, fuente, cuenta, canal, escritura) -> list[Resultado]:
    ahora = timezone.now()
    previos = _duplicados(fuente, {p.clave for p in piezas})
    # The files of what will be stored (the first of each key) are written meanwhile.
    archivos, claves = _Archivos(), set(previos)
    for pieza in piezas:
        if pieza.clave not in claves and pieza.mensaje.automatico != "bucle":
            claves.add(pieza.clave)
            _nombrar_archivos(pieza, archivos)
    escritura.extend(archivos.escribir_aparte())
    hilos = _leer_hilos([p.mensaje for p in piezas if p.clave not in previos])
    agentes = _agentes_remitentes(piezas, hilos)
    vistos: dict[str, Resultado] = {}
    resultados: list[Resultado] = []
    nuevos: list[Ticket] = []
    cambios: dict[int, set[str]] = {}  # id of an existing ticket -> fields changed
    detalles: list[tuple[DetalleTicket, list[Adjunto]]] = []
    for pieza in piezas:
        mensaje = pieza.mensaje
        previo = previos.get(pieza.clave)
        if previo is None and pieza.clave in vistos:  # twice in this batch
            primero = vistos[pieza.clave]
            previo = Resultado(
                ticket=primero.ticket, detalle=primero.detalle, creado=primero.creado
            )
            previo.duplicado = True
        if previo is not None:
            resultados.append(previo)
            continue
        if mensaje.automatico == "bucle":
            logger.info("Dropped our own notification %s from %s (mail loop)", pieza.clave, fuente)
            resultados.append(
                Resultado(
                    fallido=_fallido_de(
                        mensaje, CorreoFallido.Motivo.BUCLE, fuente=fuente, cuenta=cuenta
                    )
                )
            )
            continue

        ticket = _hilo(mensaje, hilos)
        anterior = None
        if (
            ticket is not None
            and ticket.estado == Ticket.Estado.CERRADO
            and not mensaje.automatico  # machine mail stays on the ticket it refers to
            and not _reabrible(ticket)
        ):
            # Later replies to the same closed ticket join the one the first of them opened.
            anterior, ticket = ticket, _seguimiento(ticket, hilos)
            if ticket is not None:
                anterior = None

        creado = ticket is None
        if creado:
            # Machine mail that refers to no ticket opens one too (alerts, bounces of mail sent
            # outside the portal); being machine mail, it triggers no acknowledgement.
            ticket = _ticket_nuevo(mensaje, cuenta=cuenta, canal=canal, relacionado=anterior)
            nuevos.append(ticket)
            if anterior is not None:
                hilos.seguimientos[anterior.pk] = ticket
        agente_id = None
        if not creado:
            agente_id = agentes.get(mensaje.de_email) if not mensaje.automatico else None
            if agente_id is not None and mensaje.de_email != ticket.solicitante_email.lower():
                campos = _respuesta_de_agente(ticket, ahora)
            else:
                agente_id = None
                campos = _actualizar_ticket(ticket, mensaje)
            if ticket.pk is not None:
                cambios.setdefault(ticket.pk, set()).update(campos)

        detalle, adjuntos = _guardar_detalle(ticket, mensaje, fuente=fuente, pieza=pieza)
        if agente_id is not None:
            # An agent's own mail to the customer, copied to the mailbox: our reply, by mail.
            detalle.tipo, detalle.autor_id = DetalleTicket.Tipo.RESPUESTA, agente_id
        detalles.append((detalle, adjuntos))
        if mensaje.message_id:
            hilos.en_lote.setdefault(mensaje.message_id, ticket)
        resultado = Resultado(ticket=ticket, detalle=detalle, creado=creado)
        vistos[pieza.clave] = resultado
        resultados.append(resultado)

    if nuevos:
        tickets_abrir(nuevos, ahora=ahora)
    if cambios:
        tocados = [hilos.tickets[pk] for pk in sorted(cambios)]
        for ticket in tocados:
            ticket.actualizado = ahora
        Ticket.objects.bulk_update(tocados, sorted(set().union(*cambios.values())))
    if detalles:
        DetalleTicket.objects.bulk_create([detalle for detalle, _ in detalles])
        adjuntos = [fila for _, filas in detalles for fila in filas]
        if adjuntos:
            Adjunto.objects.bulk_create(adjuntos)
    return resultados


def _duplicados(fuente: str, claves: set[str]) -> dict[str, Resultado]:
    """The first result of each key already stored for the source (a probe on its index)."""
    detalles = list(
        DetalleTicket.objects.select_related("ticket").filter(fuente=fuente, clave_dedup__in=claves)
    )
    if not detalles:
        return {}
    primeros = dict(
        DetalleTicket.objects.filter(ticket_id__in={d.ticket_id for d in detalles})
        .order_by()
        .values("ticket_id")
        .annotate(primero=Min("id"))
        .values_list("ticket_id", "primero")
    )
    return {
        d.clave_dedup: Resultado(
            ticket=d.ticket, detalle=d, creado=primeros[d.ticket_id] == d.pk, duplicado=True
        )
        for d in detalles
    }


def _referencias(mensaje: MensajeEntrante) -> list[str]:
    """The Message-IDs a message refers to, the most telling first."""
    ids = [*mensaje.in_reply_to, *reversed(mensaje.references), *mensaje.originales]
    return list(dict.fromkeys(ids))[:100]


def _leer_hilos(mensajes: list[MensajeEntrante]) -> _Hilos:
    """One query for every Message-ID the batch refers to (and its own, for copies through
    another mailbox), one for subject tags; then every ticket any message could continue is
    locked, in id order, so concurrent batches never wait for each other in a cycle."""
    hilos = _Hilos()
    ids, referidos = set(), set()
    for mensaje in mensajes:
        referidos.update(_referencias(mensaje))
        if mensaje.message_id and mensaje.de_email:
            ids.add(mensaje.message_id)
    ids |= referidos
    if ids:
        for message_id, ticket_id, de, tipo in (
            DetalleTicket.objects.filter(message_id__in=ids)
            .order_by("id")
            .values_list("message_id", "ticket_id", "de", "tipo")
        ):
            # The first entry with an id is the real one: a later mail reusing that
            # Message-ID (through another mailbox, say) must not take over the thread.
            hilos.primero.setdefault(message_id, ticket_id)
            if tipo == DetalleTicket.Tipo.ENTRANTE:
                hilos.entrantes.setdefault(message_id, []).append((ticket_id, de))
        # A reply to mail we sent (an acknowledgement, a notification) threads to its ticket.
        otros = referidos - hilos.primero.keys()
        if otros:
            for message_id, ticket_id in notificaciones.tickets_de_message_ids(otros).items():
                hilos.primero.setdefault(message_id, ticket_id)
    numeros = set()
    for mensaje in mensajes:
        match = _TAG.search(mensaje.asunto)
        if match:
            numeros.add(int(match.group(1)))
    if numeros:
        hilos.numeros = dict(Ticket.objects.filter(numero__in=numeros).values_list("numero", "pk"))
    candidatos = set(hilos.numeros.values())
    for mensaje in mensajes:
        if mensaje.message_id and mensaje.de_email:
            ticket_id = _copia_de(mensaje, hilos)
            if ticket_id is not None:
                candidatos.add(ticket_id)
        candidatos.update(hilos.primero[i] for i in _referencias(mensaje) if i in hilos.primero)
    if candidatos:
        hilos.tickets = {
            t.pk: t
            for t in Ticket.objects.select_for_update().filter(pk__in=candidatos).order_by("pk")
        }
        _seguir_fusiones(hilos)
    return hilos


def _seguir_fusiones(hilos: _Hilos) -> None:
    """Mail for a ticket merged into another goes to the one it was merged into (following a
    chain of merges): those are locked too. No query unless some candidate was merged."""
    for _vuelta in range(20):  # a chain is short; a cycle (never made) must not loop
        faltan = {
            t.relacionado_id
            for t in hilos.tickets.values()
            if t.fusionado_en is not None and t.relacionado_id not in hilos.tickets
        } - {None}
        if not faltan:
            break
        for t in Ticket.objects.select_for_update().filter(pk__in=faltan).order_by("pk"):
            hilos.tickets[t.pk] = t
    for pk, ticket in hilos.tickets.items():
        destino, vistos = ticket, {pk}
        while destino.fusionado_en is not None and destino.relacionado_id in hilos.tickets:
            destino = hilos.tickets[destino.relacionado_id]
            if destino.pk in vistos:
                break
            vistos.add(destino.pk)
        if destino.pk != pk:
            hilos.fusiones[pk] = destino.pk


def _vigente(ticket: Ticket | None, hilos: _Hilos) -> Ticket | None:
    """The ticket itself, or the one it was merged into."""
    if ticket is None or ticket.pk not in hilos.fusiones:
        return ticket
    return hilos.tickets[hilos.fusiones[ticket.pk]]


def _copia_de(mensaje: MensajeEntrante, hilos: _Hilos) -> int | None:
    """The ticket the same mail opened through another of our mailbox (sent to two
    addresses); only from the same sender, so no one can hijack it."""
    for ticket_id, de in hilos.entrantes.get(mensaje.message_id, [])[:5]:
        if de.lower() == mensaje.de_email or de.lower().endswith(f"<{mensaje.de_email}>"):
            return ticket_id
    return None


def _hilo(mensaje: MensajeEntrante, hilos: _Hilos) -> Ticket | None:
    """The ticket a message continues (`_hilo_de`), or the one that ticket was merged into."""
    return _vigente(_hilo_de(mensaje, hilos), hilos)


def _hilo_de(mensaje: MensajeEntrante, hilos: _Hilos) -> Ticket | None:
    """The ticket a message continues: by its headers (a bounce: by those of the message it
    returns), else by a tag from a participant."""
    if mensaje.message_id and mensaje.de_email:
        ticket_id = _copia_de(mensaje, hilos)
        if ticket_id in hilos.tickets:
            return hilos.tickets[ticket_id]
    for message_id in _referencias(mensaje):
        # Stored entries come before any of this batch.
        if hilos.primero.get(message_id) in hilos.tickets:
            return hilos.tickets[hilos.primero[message_id]]
        if message_id in hilos.en_lote:
            return hilos.en_lote[message_id]
    match = _TAG.search(mensaje.asunto)
    if match:
        ticket = hilos.tickets.get(hilos.numeros.get(int(match.group(1))))
        if ticket is not None and _es_participante(ticket, mensaje.de_email):
            return ticket
    return None


def _seguimiento(anterior: Ticket, hilos: _Hilos) -> Ticket | None:
    """The open ticket that late replies to a closed one opened, if any."""
    if anterior.pk in hilos.seguimientos:
        return hilos.seguimientos[anterior.pk]
    ticket = (
        Ticket.objects.select_for_update()
        .filter(relacionado=anterior)
        .exclude(estado=Ticket.Estado.CERRADO)
        .order_by("id")
        .first()
    )
    if ticket is not None:
        ticket = hilos.tickets.setdefault(ticket.pk, ticket)  # one object per ticket
        hilos.seguimientos[anterior.pk] = ticket
    return ticket


def _es_participante(ticket: Ticket, remitente: str) -> bool:
    if not remitente:
        return False
    if remitente == ticket.solicitante_email.lower() or remitente in ticket.participantes:
        return True
    return Usuario.objects.filter(
        Q(acceso_ticket=True) | Q(is_staff=True), email__iexact=remitente, is_active=True
    ).exists()


def _reabrible(ticket: Ticket) -> bool:
    if ticket.cerrado_en is None:
        return True
    return timezone.now() - ticket.cerrado_en <= timedelta(days=settings.TICKET_REABRIR_DIAS)


def _propias() -> set[str]:
    """Our own addresses: the sender of our mail and every mailbox (never participants)."""

    def cargar():
        propias = {_direccion_remitente()}
        propias.update(
            u.lower() for u in CuentaCorreo.objects.values_list("user", flat=True) if "@" in u
        )
        return frozenset(propias)

    return set(configuracion.leer("propias", cargar))


def _participantes(mensaje: MensajeEntrante, excluir: set[str]) -> list[str]:
    return [addr for addr in dict.fromkeys([*mensaje.cc, *mensaje.para]) if addr not in excluir]


def _ticket_nuevo(mensaje, *, cuenta, canal, relacionado) -> Ticket:
    """A new ticket, not yet saved: `_numerar_y_asignar` completes it."""
    propias = _propias()
    solicitante_nombre, solicitante_email = mensaje.de_nombre, mensaje.de_email
    return Ticket(
        asunto=mensaje.asunto or "(sin asunto)",
        departamento=_departamento(mensaje, cuenta),
        solicitante_nombre=solicitante_nombre[:255],
        solicitante_email=solicitante_email[:254],
        participantes=_participantes(mensaje, propias | {solicitante_email}),
        canal=canal,
        relacionado=relacionado,
    )


def tickets_abrir(tickets: list[Ticket], *, ahora) -> None:
    """Open new tickets (not yet saved): number them in order, give each an agent by its
    department's rule, set their SLA due dates from `ahora`, and save them. The one way a
    ticket is opened: the pipeline's new mail and tickets made by hand
    (`services.ticket_crear_manual`) both come here."""
    _numerar_y_asignar(tickets, ahora)
    Ticket.objects.bulk_create(tickets)


def _numerar_y_asignar(tickets: list[Ticket], ahora) -> None:
    """Numbers in batch order, an agent by each department's rule, SLA due dates."""
    for ticket, numero in zip(tickets, siguientes_numeros(len(tickets)), strict=True):
        ticket.numero = numero
    por_departamento: dict[int, list[Ticket]] = {}
    for ticket in tickets:
        if ticket.departamento_id is not None:
            por_departamento.setdefault(ticket.departamento_id, []).append(ticket)
    plazos: dict[tuple[int, str], dict | None] = {}
    for departamento_id in sorted(por_departamento):  # queue rows locked in id order
        del_departamento = por_departamento[departamento_id]
        agentes = _agentes(del_departamento[0].departamento, len(del_departamento))
        for ticket, agente_id in zip(del_departamento, agentes, strict=True):
            ticket.asignado_id = agente_id
            clave = (departamento_id, ticket.prioridad)
            if clave not in plazos:  # the same start, policy and calendar: the same clock
                plazos[clave] = (
                    {campo: getattr(ticket, campo) for campo in sla.CAMPOS_RELOJ}
                    if _vencimientos(ticket, ahora)
                    else None
                )
            for campo, valor in (plazos[clave] or {}).items():
                setattr(ticket, campo, valor)


def _vencimientos(ticket: Ticket, ahora) -> tuple | None:
    try:
        return sla.sla_vencimientos(ticket=ticket, desde=ahora)
    except (ValueError, OverflowError):
        # A calendar that cannot place the targets must not stop the department's mail.
        logger.exception("No SLA due dates for a new ticket of %s", ticket.departamento)
        return None


def _agentes_remitentes(piezas: list[_Pieza], hilos: _Hilos) -> dict[str, int]:
    """The senders of the batch that are agents (active staff, or users with ticket access or
    heading a department), by address: one query, and only when some message may continue a
    stored ticket."""
    if not hilos.tickets:
        return {}
    correos = {
        p.mensaje.de_email for p in piezas if p.mensaje.de_email and not p.mensaje.automatico
    }
    if not correos:
        return {}
    encontrados: dict[str, int] = {}
    for usuario_id, email in (
        Usuario.objects.annotate(email_l=Lower("email"))
        .filter(email_l__in=correos, is_active=True)
        .filter(Q(is_staff=True) | Q(acceso_ticket=True) | Q(jefe=True))
        .order_by("id")
        .values_list("id", "email")
    ):
        encontrados.setdefault(email.lower(), usuario_id)
    return encontrados


def _respuesta_de_agente(ticket: Ticket, ahora) -> list[str]:
    """An agent answered the customer by mail (copying the mailbox): the first response, if it
    is the first; the ticket is not reopened and no customer reply is announced."""
    campos = ["actualizado"]
    if ticket.primera_respuesta_en is None:
        ticket.primera_respuesta_en = ahora
        ticket.sla_proximo = sla.sla_proximo(ticket)
        campos += ["primera_respuesta_en", "sla_proximo"]
    return campos


def _actualizar_ticket(ticket: Ticket, mensaje: MensajeEntrante) -> list[str]:
    """Apply a reply to its ticket in memory; the fields that changed."""
    campos = ["actualizado"]
    if mensaje.automatico == "rebote":
        nuevos = [a for a in mensaje.rebotados if a not in ticket.correos_rebotados]
        if nuevos:
            ticket.correos_rebotados = [*ticket.correos_rebotados, *nuevos]
            campos.append("correos_rebotados")
    elif not mensaje.automatico:
        excluir = _propias() | {ticket.solicitante_email.lower(), mensaje.de_email}
        nuevos = [a for a in _participantes(mensaje, excluir) if a not in ticket.participantes]
        if nuevos:
            ticket.participantes = [*ticket.participantes, *nuevos]
            campos.append("participantes")
        if ticket.estado in (
            Ticket.Estado.EN_ESPERA,
            Ticket.Estado.RESUELTO,
            Ticket.Estado.CERRADO,
        ):
            # The customer answered: the clock runs again, its targets moved by the pause.
            anterior, ticket.estado = ticket.estado, Ticket.Estado.ABIERTO
            campos += ["estado", *sla.sla_estado_cambiado(ticket=ticket, anterior=anterior)]
    return campos


def _departamento(mensaje: MensajeEntrante, cuenta: CuentaCorreo | None) -> Departamento | None:
    if cuenta is not None and cuenta.departamento_id:
        return cuenta.departamento
    destinatarios = {*mensaje.para, *mensaje.cc}
    reglas = configuracion.leer(
        "reglas", lambda: list(ReglaDepartamento.objects.select_related("departamento"))
    )
    for regla in reglas:
        valor = regla.valor.strip().lower()
        if regla.campo == ReglaDepartamento.Campo.SISTEMA and mensaje.sistema.lower() == valor:
            return regla.departamento
        if regla.campo == ReglaDepartamento.Campo.DESTINATARIO and valor in destinatarios:
            return regla.departamento
    return None


def agente_siguiente(departamento: Departamento) -> int | None:
    """The id of the agent the department's next ticket goes to by its rule (None: the queue);
    a transferred ticket takes its turn like a new one. Locks the department's queue row."""
    return _agentes(departamento, 1)[0]


def _agentes(departamento: Departamento, cuantos: int) -> list[int | None]:
    """The ids of the agents the department's next `cuantos` new tickets go to, in order, by
    the department's rule.

    The department's queue row is locked, so concurrent tickets take turns."""
    cola, _ = ColaDepartamento.objects.select_for_update().get_or_create(departamento=departamento)
    if cola.asignacion == Asignacion.NINGUNA:
        return [None] * cuantos
    agentes = Usuario.objects.filter(
        departamento=departamento, is_active=True, acceso_ticket=True
    ).order_by("id")
    if cola.asignacion == Asignacion.MENOS_ABIERTOS:
        abiertos = dict(
            agentes.annotate(
                abiertos=Count(
                    "tickets_asignados", filter=Q(tickets_asignados__estado__in=_ABIERTOS)
                )
            ).values_list("id", "abiertos")
        )
        elegidos = []
        for _ in range(cuantos):
            elegido = min(abiertos, key=lambda i: (abiertos[i], i), default=None)
            if elegido is not None:
                abiertos[elegido] += 1  # the new ticket is open
            elegidos.append(elegido)
        return elegidos
    ids = list(agentes.values_list("id", flat=True))
    if not ids:
        return [None] * cuantos
    elegidos, ultimo = [], cola.ultimo_asignado_id or 0
    for _ in range(cuantos):
        ultimo = next((i for i in ids if i > ultimo), ids[0])
        elegidos.append(ultimo)
    cola.ultimo_asignado_id = ultimo
    cola.save(update_fields=["ultimo_asignado"])
    return elegidos


def siguientes_numeros(cuantos: int) -> list[int]:
    """The next public ticket numbers, ascending: a database sequence on PostgreSQL. SQLite
    runs one writer at a time (IMMEDIATE transactions), so MAX + 1 inside the transaction is
    safe."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval('incidencias_ticket_numero_seq') FROM generate_series(1, %s)",
                [cuantos],
            )
            return sorted(numero for (numero,) in cursor.fetchall())
        cursor.execute("SELECT COALESCE(MAX(numero), 0) FROM incidencias_ticket")
        ultimo = cursor.fetchone()[0]
        return list(range(ultimo + 1, ultimo + 1 + cuantos))


def _guardar_detalle(
    ticket, mensaje: MensajeEntrante, *, fuente, pieza: _Pieza
) -> tuple[DetalleTicket, list[Adjunto]]:
    """The entry of a message and its attachments, not yet saved (their files are)."""
    detalle = DetalleTicket(
        ticket=ticket,
        tipo=DetalleTicket.Tipo.ENTRANTE,
        automatico="" if mensaje.automatico == "bucle" else mensaje.automatico,
        de=_direccion(mensaje.de_nombre, mensaje.de_email)[:998],
        para=", ".join(mensaje.para),
        cc=", ".join(mensaje.cc),
        bcc=", ".join(mensaje.bcc),
        responder_a=", ".join(mensaje.responder_a),
        asunto=mensaje.asunto,
        texto=mensaje.texto,
        html=mensaje.html,
        fecha=mensaje.fecha,
        message_id=mensaje.message_id,
        in_reply_to=" ".join(mensaje.in_reply_to),
        references=" ".join(mensaje.references),
        headers=mensaje.headers,
        sistema=mensaje.sistema[:120],
        nota="\n".join(mensaje.notas),
        rebotados=mensaje.rebotados,
        fuente=fuente,
        clave_dedup=pieza.clave,
        crudo=pieza.crudo,
    )
    adjuntos = [
        Adjunto(
            detalle=detalle,
            nombre=adjunto.nombre[:255] or "adjunto",
            content_type=adjunto.content_type[:255],
            tamano=len(adjunto.contenido),
            sha256=sha,
            archivo=nombre,
            content_id=adjunto.content_id[:255],
            en_linea=adjunto.en_linea,
        )
        for adjunto, (sha, nombre) in zip(mensaje.adjuntos, pieza.archivos, strict=True)
    ]
    return detalle, adjuntos


def _direccion(nombre: str, email: str) -> str:
    if nombre and email:
        return f"{nombre} <{email}>"
    return email or nombre


def _nombrar_archivos(pieza: _Pieza, archivos: "_Archivos") -> None:
    """Name the raw message and the attachments of a message, to be written by `archivos`."""
    mensaje = pieza.mensaje
    if pieza.hashes is None:
        pieza.con_hashes()
    hashes = iter(pieza.hashes)
    if mensaje.crudo is not None:
        pieza.crudo = archivos.nombrar(
            DetalleTicket.crudo.field, mensaje.crudo, ".eml", next(hashes)
        )
    pieza.archivos = []
    for adjunto in mensaje.adjuntos:
        sha = next(hashes)
        nombre = archivos.nombrar(Adjunto.archivo.field, adjunto.contenido, "", sha)
        pieza.archivos.append((sha, nombre))


def _guardar_archivo(field, contenido: bytes, sufijo: str, sha: str | None = None) -> str:
    archivos = _Archivos()
    nombre = archivos.nombrar(field, contenido, sufijo, sha)
    archivos.escribir()
    return nombre


# Threads writing files: a flush to disk waits mostly on the device, which takes several at once.
ESCRITORES = 8
_escritor: futures.ThreadPoolExecutor | None = None
_escritor_lock = threading.Lock()


def _sin_escritor() -> None:
    """A forked child (a Celery or gunicorn worker) has no writer threads: it makes its own."""
    global _escritor, _escritor_lock
    _escritor, _escritor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_sin_escritor)


class _Archivos:
    """Content stored once by its SHA-256, durably before the rows that name it commit.

    Names are given at once (`nombrar`); `escribir` writes what is missing. On the local file
    system each file is written whole under a temporary name, flushed to disk and renamed into
    place: a crash never leaves a truncated file under the final name, and an existing file of
    another size (an older partial write) is replaced. Then its folder is flushed, so the
    rename is on disk too (and the folder's own entry, when it was just made).
    """

    def __init__(self):
        self.pendientes: dict[str, tuple[object, bytes]] = {}  # name -> (storage, content)

    def nombrar(self, field, contenido: bytes, sufijo: str, sha: str | None = None) -> str:
        sha = sha or hashlib.sha256(contenido).hexdigest()
        nombre = f"{'correos' if sufijo == '.eml' else 'adjuntos'}/{sha[:2]}/{sha}{sufijo}"
        self.pendientes.setdefault(nombre, (field.storage, contenido))
        return nombre

    def escribir_aparte(self) -> list[futures.Future]:
        """`escribir`, each file in one of the writer threads (file I/O lets go of the GIL)."""
        global _escritor
        with _escritor_lock:
            if _escritor is None:
                _escritor = futures.ThreadPoolExecutor(
                    ESCRITORES, thread_name_prefix="ingest-archivos"
                )
        return [
            _escritor.submit(_escribir_archivo, storage, nombre, contenido)
            for nombre, (storage, contenido) in self.pendientes.items()
        ]

    def escribir(self) -> None:
        for nombre, (storage, contenido) in self.pendientes.items():
            _escribir_archivo(storage, nombre, contenido)


def _escribir_archivo(storage, nombre: str, contenido: bytes) -> None:
    """One file of `_Archivos`, on disk with its folder's entry when this returns."""
    try:
        destino = Path(storage.path(nombre))
    except NotImplementedError:  # remote storage: its own save is atomic per object
        if not storage.exists(nombre):
            storage.save(nombre, ContentFile(contenido))
        return
    carpetas = [destino.parent]
    try:
        if destino.stat().st_size == len(contenido):
            return
    except FileNotFoundError:
        if not destino.parent.is_dir():
            destino.parent.mkdir(parents=True, exist_ok=True)
            carpetas.append(destino.parent.parent)  # the new folder's entry
    fd, temporal = tempfile.mkstemp(dir=destino.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(contenido)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporal, 0o644)
        os.replace(temporal, destino)
    except BaseException:
        Path(temporal).unlink(missing_ok=True)
        raise
    for carpeta in carpetas:
        fd = os.open(carpeta, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _base_disponible() -> bool:
    """Whether the database connection still works (an error was the mail's, not the DB's)."""
    try:
        return connection.is_usable() if connection.connection is not None else False
    except Exception:
        return False


# --- Failed mail ----------------------------------------------------------------------------


def dominio_propio() -> str:
    """The domain of the Message-IDs we generate (mail carrying it is our own)."""
    dominio = settings.MESSAGE_ID_DOMAIN or _direccion_remitente().rpartition("@")[2]
    return dominio.lower()


def _direccion_remitente() -> str:
    """DEFAULT_FROM_EMAIL's address: the setting may be `Name <address>`."""
    return _direccion_de(settings.DEFAULT_FROM_EMAIL)


@functools.lru_cache(maxsize=8)
def _direccion_de(valor: str) -> str:
    """An address header's address, parsed once per value (read for every notification)."""
    return parseaddr(valor)[1].lower()


def _fallido_de(mensaje, motivo, *, fuente, cuenta) -> CorreoFallido:
    raw = mensaje.crudo
    if raw is None:
        raw = repr(mensaje).encode("utf-8", "replace")
    return correo_fallido_registrar(raw=raw, motivo=motivo, fuente=fuente, cuenta=cuenta)


def correo_fallido_registrar(
    *,
    raw: bytes,
    motivo: str,
    error: str = "",
    fuente: str = "",
    cuenta: CuentaCorreo | None = None,
    carpeta: str = "",
    uid: int | None = None,
) -> CorreoFallido:
    """Keep a message that did not become a ticket entry (once per source and content)."""
    sha = hashlib.sha256(raw).hexdigest()
    existente = CorreoFallido.objects.filter(
        fuente=fuente, sha256=sha, reprocesado_en__isnull=True
    ).first()
    if existente is not None:
        return existente
    fallido = CorreoFallido(
        motivo=motivo,
        error=error,
        tamano=len(raw),
        sha256=sha,
        fuente=fuente,
        cuenta=cuenta,
        carpeta=carpeta,
        uid=uid,
    )
    fallido.crudo.name = _guardar_archivo(CorreoFallido.crudo.field, raw, ".eml", sha)
    fallido.save()
    return fallido


def correo_fallido_reprocesar(*, fallido: CorreoFallido) -> Resultado:
    """Run a failed message through the pipeline again (after a fix or a new ticket)."""
    with fallido.crudo.open("rb") as handle:
        raw = handle.read()
    mensaje = parse_raw(raw, max_bytes=settings.INGEST_MAX_BYTES, own_domain=dominio_propio())
    if fallido.motivo == CorreoFallido.Motivo.BUCLE:
        mensaje.automatico = "autorespuesta"  # an operator chose to keep it after all
    resultado = ingest(mensaje, fuente=fallido.fuente, cuenta=fallido.cuenta)
    if resultado.detalle is not None:
        CorreoFallido.objects.filter(pk=fallido.pk).update(
            reprocesado_en=timezone.now(), detalle=resultado.detalle
        )
    return resultado


configuracion.conectar(CuentaCorreo, ReglaDepartamento)
