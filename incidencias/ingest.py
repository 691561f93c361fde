"""The mail pipeline: the only way mail becomes tickets.

The IMAP poller calls `ingest_raw` with the bytes it fetched; `POST /api/correo/save` builds a
`MensajeEntrante` from its JSON and calls `ingest`. In one transaction the pipeline
deduplicates, recognises machine mail, threads, stores the entry with its attachments, and for
a new ticket picks the department and the agent and sets the SLA due dates.
"""

import hashlib
import logging
import os
import re
import tempfile
import traceback
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from sso.models import Departamento, Usuario

from . import configuracion, notificaciones
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
from .sla import sla_vencimientos

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
    """Ingest one RFC 5322 message. Anything that goes wrong is recorded in CorreoFallido with
    the raw bytes; this raises only if even that record cannot be written, so a caller that
    marks mail on a server after this returns never loses a message. `tamano_completo` says
    `raw` is only the start of a message that big (see `parse_raw`)."""
    fuente = fuente or (cuenta.fuente if cuenta else "raw")
    try:
        mensaje = parse_raw(
            raw,
            max_bytes=settings.INGEST_MAX_BYTES,
            own_domain=dominio_propio(),
            tamano_completo=tamano_completo,
        )
        return ingest(mensaje, fuente=fuente, cuenta=cuenta)
    except (OperationalError, InterfaceError) as exc:
        if not _base_disponible():
            raise  # the database, not the mail: the caller retries later
        error = exc  # the database refused this mail (say, a value too big for an index)
    except Exception as exc:
        error = exc
    logger.error("Mail from %s could not be ingested; kept as failed mail", fuente, exc_info=error)
    return Resultado(
        fallido=correo_fallido_registrar(
            raw=raw,
            motivo=CorreoFallido.Motivo.ERROR,
            error="".join(traceback.format_exception_only(error)).strip()[:4000],
            fuente=fuente,
            cuenta=cuenta,
            carpeta=carpeta,
            uid=uid,
        )
    )


def ingest(
    mensaje: MensajeEntrante,
    *,
    fuente: str,
    cuenta: CuentaCorreo | None = None,
    canal: str = Ticket.Canal.CORREO,
) -> Resultado:
    """Store one normalised message, exactly once per `fuente` and Message-ID."""
    mensaje.sanear()  # messages built from JSON have not been through parse_raw
    clave = mensaje.clave_dedup()
    try:
        with transaction.atomic():
            resultado = _ingest(mensaje, fuente=fuente, clave=clave, cuenta=cuenta, canal=canal)
            notificaciones.notificar_ingreso(resultado)
            return resultado
    except IntegrityError:
        # A concurrent ingest of the same message won the race: answer with its result.
        previo = _duplicado(fuente, clave)
        if previo is None:
            raise
        return previo


# --- The pipeline ---------------------------------------------------------------------------


def _ingest(mensaje, *, fuente, clave, cuenta, canal) -> Resultado:
    previo = _duplicado(fuente, clave)
    if previo is not None:
        return previo
    if mensaje.automatico == "bucle":
        logger.info("Dropped our own notification %s from %s (mail loop)", clave, fuente)
        return Resultado(
            fallido=_fallido_de(mensaje, CorreoFallido.Motivo.BUCLE, fuente=fuente, cuenta=cuenta)
        )

    ticket = _hilo(mensaje)
    creado = False
    if (
        ticket is not None
        and ticket.estado == Ticket.Estado.CERRADO
        and not mensaje.automatico  # machine mail stays on the ticket it refers to
        and not _reabrible(ticket)
    ):
        anterior, ticket = ticket, None
    else:
        anterior = None
    if anterior is not None:
        # Later replies to the same closed ticket join the one the first of them opened.
        ticket = (
            Ticket.objects.select_for_update()
            .filter(relacionado=anterior)
            .exclude(estado=Ticket.Estado.CERRADO)
            .order_by("id")
            .first()
        )
        if ticket is not None:
            anterior = None

    if ticket is None:
        # Machine mail that refers to no ticket opens one too (alerts, bounces of mail sent
        # outside the portal); being machine mail, it triggers no acknowledgement.
        ticket = _ticket_nuevo(mensaje, cuenta=cuenta, canal=canal, relacionado=anterior)
        creado = True
    else:
        _actualizar_ticket(ticket, mensaje)

    detalle = _guardar_detalle(ticket, mensaje, fuente=fuente, clave=clave)
    return Resultado(ticket=ticket, detalle=detalle, creado=creado)


def _duplicado(fuente: str, clave: str) -> Resultado | None:
    # A probe on the unique index first: almost every message is new.
    pk = DetalleTicket.objects.filter(fuente=fuente, clave_dedup=clave).values_list("pk").first()
    if pk is None:
        return None
    detalle = DetalleTicket.objects.select_related("ticket").get(pk=pk[0])
    primero = detalle.ticket.detalles.order_by("id").values_list("id", flat=True).first()
    return Resultado(
        ticket=detalle.ticket, detalle=detalle, creado=primero == detalle.pk, duplicado=True
    )


def _hilo(mensaje: MensajeEntrante) -> Ticket | None:
    """The ticket a message continues: by its headers (a bounce: by those of the message it
    returns), else by a tag from a participant."""
    if mensaje.message_id and mensaje.de_email:
        # The same mail through another of our mailboxes (sent to two addresses) joins the
        # ticket the first copy opened; only from the same sender, so no one can hijack it.
        for ticket_id, de in (
            DetalleTicket.objects.filter(
                message_id=mensaje.message_id, tipo=DetalleTicket.Tipo.ENTRANTE
            )
            .order_by("id")
            .values_list("ticket_id", "de")[:5]
        ):
            if de.lower() == mensaje.de_email or de.lower().endswith(f"<{mensaje.de_email}>"):
                return Ticket.objects.select_for_update().get(pk=ticket_id)
    ids = [*mensaje.in_reply_to, *reversed(mensaje.references), *mensaje.originales]
    ids = list(dict.fromkeys(ids))
    if ids:
        found: dict[str, int] = {}
        for message_id, ticket_id in (
            DetalleTicket.objects.filter(message_id__in=ids[:100])
            .order_by("id")
            .values_list("message_id", "ticket_id")
        ):
            # The first entry with an id is the real one: a later mail reusing that
            # Message-ID (through another mailbox, say) must not take over the thread.
            found.setdefault(message_id, ticket_id)
        for message_id in ids:
            if message_id in found:
                return Ticket.objects.select_for_update().get(pk=found[message_id])
        # A reply to mail we sent (an acknowledgement, a notification) threads to its ticket.
        ticket_id = notificaciones.ticket_de_message_ids(ids[:100])
        if ticket_id is not None:
            return Ticket.objects.select_for_update().get(pk=ticket_id)
    match = _TAG.search(mensaje.asunto)
    if match:
        ticket = Ticket.objects.select_for_update().filter(numero=int(match.group(1))).first()
        if ticket is not None and _es_participante(ticket, mensaje.de_email):
            return ticket
    return None


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
    departamento = _departamento(mensaje, cuenta)
    propias = _propias()
    solicitante_nombre, solicitante_email = mensaje.de_nombre, mensaje.de_email
    ticket = Ticket(
        numero=siguiente_numero(),
        asunto=mensaje.asunto or "(sin asunto)",
        departamento=departamento,
        solicitante_nombre=solicitante_nombre[:255],
        solicitante_email=solicitante_email[:254],
        participantes=_participantes(mensaje, propias | {solicitante_email}),
        canal=canal,
        relacionado=relacionado,
    )
    if departamento is not None:
        ticket.asignado_id = _agente(departamento)
        try:
            vencimientos = sla_vencimientos(ticket=ticket, desde=timezone.now())
        except (ValueError, OverflowError):
            # A calendar that cannot place the targets must not stop the department's mail.
            logger.exception("No SLA due dates for a new ticket of %s", departamento)
            vencimientos = None
        if vencimientos:
            ticket.vence_primera_respuesta, ticket.vence_resolucion = vencimientos
    ticket.save()
    return ticket


def _actualizar_ticket(ticket: Ticket, mensaje: MensajeEntrante) -> None:
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
            ticket.estado = Ticket.Estado.ABIERTO
            ticket.resuelto_en = ticket.cerrado_en = None
            campos += ["estado", "resuelto_en", "cerrado_en"]
    ticket.save(update_fields=campos)


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


def _agente(departamento: Departamento) -> int | None:
    """The id of the agent a new ticket of the department goes to, by the department's rule.

    The department's queue row is locked, so concurrent tickets take turns."""
    cola, _ = ColaDepartamento.objects.select_for_update().get_or_create(departamento=departamento)
    if cola.asignacion == Asignacion.NINGUNA:
        return None
    agentes = Usuario.objects.filter(
        departamento=departamento, is_active=True, acceso_ticket=True
    ).order_by("id")
    if cola.asignacion == Asignacion.MENOS_ABIERTOS:
        return (
            agentes.annotate(
                abiertos=Count(
                    "tickets_asignados", filter=Q(tickets_asignados__estado__in=_ABIERTOS)
                )
            )
            .order_by("abiertos", "id")
            .values_list("id", flat=True)
            .first()
        )
    ids = list(agentes.values_list("id", flat=True))
    if not ids:
        return None
    siguiente = next((i for i in ids if i > (cola.ultimo_asignado_id or 0)), ids[0])
    cola.ultimo_asignado_id = siguiente
    cola.save(update_fields=["ultimo_asignado"])
    return siguiente


def siguiente_numero() -> int:
    """The next public ticket number: a database sequence on PostgreSQL. SQLite runs one
    writer at a time (IMMEDIATE transactions), so MAX + 1 inside the transaction is safe."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval('incidencias_ticket_numero_seq')")
        else:
            cursor.execute("SELECT COALESCE(MAX(numero), 0) + 1 FROM incidencias_ticket")
        return cursor.fetchone()[0]


def _guardar_detalle(ticket, mensaje: MensajeEntrante, *, fuente, clave) -> DetalleTicket:
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
        clave_dedup=clave,
    )
    if mensaje.crudo is not None:
        detalle.crudo.name = _guardar_archivo(DetalleTicket.crudo.field, mensaje.crudo, ".eml")
    detalle.save()
    adjuntos = []
    for adjunto in mensaje.adjuntos:
        sha = hashlib.sha256(adjunto.contenido).hexdigest()
        fila = Adjunto(
            detalle=detalle,
            nombre=adjunto.nombre[:255] or "adjunto",
            content_type=adjunto.content_type[:255],
            tamano=len(adjunto.contenido),
            sha256=sha,
            content_id=adjunto.content_id[:255],
            en_linea=adjunto.en_linea,
        )
        fila.archivo.name = _guardar_archivo(Adjunto.archivo.field, adjunto.contenido, "", sha)
        adjuntos.append(fila)
    Adjunto.objects.bulk_create(adjuntos)
    return detalle


def _direccion(nombre: str, email: str) -> str:
    if nombre and email:
        return f"{nombre} <{email}>"
    return email or nombre


def _guardar_archivo(field, contenido: bytes, sufijo: str, sha: str | None = None) -> str:
    """Store content once by its SHA-256 and return its storage name.

    On the local file system the file is written whole under a temporary name, flushed to
    disk and renamed into place: a crash never leaves a truncated file under the final name,
    and an existing file of another size (an older partial write) is replaced.
    """
    sha = sha or hashlib.sha256(contenido).hexdigest()
    nombre = f"{'correos' if sufijo == '.eml' else 'adjuntos'}/{sha[:2]}/{sha}{sufijo}"
    storage = field.storage
    try:
        destino = Path(storage.path(nombre))
    except NotImplementedError:  # remote storage: its own save is atomic per object
        if not storage.exists(nombre):
            storage.save(nombre, ContentFile(contenido))
        return nombre
    if destino.is_file() and destino.stat().st_size == len(contenido):
        return nombre
    destino.parent.mkdir(parents=True, exist_ok=True)
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
    return nombre


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
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower()


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
