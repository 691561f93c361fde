"""The notification outbox: who hears of what, and the delivery of each message.

`notificar` writes one `Notificacion` row per destination in the transaction of the event that
causes it and enqueues its delivery after commit. `notificacion_entregar` (the Celery task's
body) claims a row with a conditional UPDATE, hands it to its channel (`Canal`) outside any
transaction, and records the outcome: sent, retried later with exponential backoff, or failed.
`notificaciones_barrer` (a periodic task) re-queues rows whose task was lost.

Channels register themselves with `canal_registrar`: email here (`CanalCorreo`), Synology Chat in
the `webhooks` app.
"""

import hashlib
import json
import logging
import smtplib
import threading
from datetime import timedelta
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy

from sso.models import Departamento, Usuario

from . import configuracion
from .models import DetalleTicket, Notificacion, PreferenciaNotificacion, Ticket

logger = logging.getLogger("incidencias.notificaciones")

Evento = Notificacion.Evento
Estado = Notificacion.Estado
Destinatario = PreferenciaNotificacion.Destinatario
SYNOLOGY, CORREO = Notificacion.Canal.SYNOLOGY, Notificacion.Canal.CORREO


class ErrorPasajero(Exception):
    """A passing failure (timeout, 5xx, connection refused, Synology busy): retry later."""


class ErrorPermanente(Exception):
    """A permanent failure (bad token, unknown user, 4xx): do not retry."""


class Canal(Protocol):
    nombre: str  # "synology" or "correo"

    def enviar(self, notificacion: Notificacion) -> str:
        """Deliver one row; return a short description for the row ("Enviada a canal soporte").

        Raise ErrorPasajero or ErrorPermanente on failure."""
        ...

    # Optional: `acepta(*, departamento_id=None, usuario=None) -> bool`, whether a row for that
    # department or person could be delivered at all (Synology configured, a channel for the
    # department, an id for the person). Without it every destination is taken; with it, one
    # the channel cannot reach gets no row, so nothing says "queued" for what is bound to fail.


_canales: dict[str, Canal] = {}
_canales_lock = threading.Lock()


def canal_registrar(canal: Canal) -> None:
    """Make a channel available (apps call this in AppConfig.ready()); replaces one of the
    same name."""
    with _canales_lock:
        _canales[canal.nombre] = canal


def canal(nombre: str) -> Canal | None:
    return _canales.get(nombre)


def enlace_ticket(ticket: Ticket) -> str:
    """Absolute URL of the ticket's page in the agents' portal."""
    path = reverse("ticket", args=[ticket.numero])
    return f"{settings.SITE_URL.rstrip('/')}{path}"


# --- Who hears of what ----------------------------------------------------------------------

# Without a preference row: (recipient, channel) pairs per event.
PREDETERMINADAS: dict[str, frozenset[tuple[str, str]]] = {
    Evento.TICKET_NUEVO: frozenset({(Destinatario.DEPARTAMENTO, SYNOLOGY)}),
    Evento.RESPUESTA_CLIENTE: frozenset({(Destinatario.DEPARTAMENTO, SYNOLOGY)}),
    Evento.ASIGNACION: frozenset(
        {(Destinatario.ASIGNADO, SYNOLOGY), (Destinatario.ASIGNADO, CORREO)}
    ),
    Evento.SLA_AVISO: frozenset({(Destinatario.ASIGNADO, SYNOLOGY)}),
    Evento.SLA_INCUMPLIDO: frozenset(
        {
            (Destinatario.ASIGNADO, SYNOLOGY),
            (Destinatario.ASIGNADO, CORREO),
            (Destinatario.JEFES, SYNOLOGY),
            (Destinatario.JEFES, CORREO),
        }
    ),
    Evento.RESPUESTA_ENVIADA: frozenset(),
    Evento.ACUSE: frozenset({(Destinatario.SOLICITANTE, CORREO)}),
    # Not routed: `notificar_respuesta` writes the reply's own row.
    Evento.RESPUESTA: frozenset(),
}


def _preferencias() -> tuple[dict, dict]:
    """(department rules, personal rules), cached per process like the pipeline's config."""

    def cargar():
        departamentos, usuarios = {}, {}
        for p in PreferenciaNotificacion.objects.all():
            if p.departamento_id:
                departamentos[(p.departamento_id, p.evento, p.destinatario, p.canal)] = p.activa
            else:
                usuarios[(p.usuario_id, p.evento, p.canal)] = p.activa
        return departamentos, usuarios

    return configuracion.leer("preferencias_notificacion", cargar)


# Every (recipient, channel) pair (an enum's `values` is built anew on each access).
_RUTAS = tuple((d, c) for d in Destinatario.values for c in Notificacion.Canal.values)


def _rutas(evento: str, departamento_id: int | None) -> set[tuple[str, str]]:
    """The (recipient, channel) pairs an event of a department's ticket goes to."""
    por_departamento, _ = _preferencias()
    predeterminadas = PREDETERMINADAS.get(evento, frozenset())
    rutas = set()
    for ruta in _RUTAS:
        activa = por_departamento.get((departamento_id, evento, *ruta), ruta in predeterminadas)
        if activa:
            rutas.add(ruta)
    return rutas


def _idioma_solicitante(detalle: DetalleTicket | None) -> str:
    """English when the requester's mail says so (Content-Language, Accept-Language)."""
    if detalle is not None:
        headers = detalle.headers or {}
        for nombre in ("content-language", "accept-language"):
            valor = str(headers.get(nombre, "")).strip().lower()
            if valor:
                return "en" if valor.startswith("en") else settings.LANGUAGE_CODE
    return settings.LANGUAGE_CODE


# A row's destination: (channel, department, person, address, language).
Destino = tuple[str, Departamento | None, Usuario | None, str, str]


def _destinos(
    *,
    evento: str,
    ticket: Ticket,
    detalle: DetalleTicket | None,
    datos: dict,
    jefes: list[Usuario] | None = None,
) -> list[Destino]:
    """Where an event of this ticket goes: one destination per row to write, in order."""
    rutas = _rutas(evento, ticket.departamento_id)
    _, por_usuario = _preferencias()
    registrados = set(_canales)
    idioma = settings.LANGUAGE_CODE

    destinos: list[Destino] = []
    if ticket.departamento_id:
        for canal_ in registrados:
            if (Destinatario.DEPARTAMENTO, canal_) not in rutas:
                continue
            if canal_ == CORREO:
                correo = ticket.departamento.correo
                if correo:
                    destinos.append((canal_, ticket.departamento, None, correo, idioma))
            elif _acepta(canal_, departamento_id=ticket.departamento_id):
                destinos.append((canal_, ticket.departamento, None, "", idioma))

    # People: the channels the event reaches each one on, then their own preferences.
    personas: dict[int, tuple[Usuario, set[str]]] = {}
    if ticket.asignado_id and any(d == Destinatario.ASIGNADO for d, _ in rutas):
        asignado = ticket.asignado
        if asignado.is_active:
            canales = {c for d, c in rutas if d == Destinatario.ASIGNADO}
            personas[asignado.pk] = (asignado, canales)
    if ticket.departamento_id and any(d == Destinatario.JEFES for d, _ in rutas):
        canales = {c for d, c in rutas if d == Destinatario.JEFES}
        if jefes is None:
            jefes = Usuario.objects.filter(
                departamento_id=ticket.departamento_id, jefe=True, is_active=True
            ).order_by("id")
        for jefe in jefes:
            personas.setdefault(jefe.pk, (jefe, set()))[1].update(canales)
    actor = datos.get("por")
    for usuario, canales in personas.values():
        if usuario.pk == actor:
            continue  # nobody is told of what they did themselves
        for canal_ in sorted(registrados):
            if not por_usuario.get((usuario.pk, evento, canal_), canal_ in canales):
                continue
            if canal_ == CORREO:
                if usuario.email:
                    destinos.append((canal_, None, usuario, usuario.email, idioma))
            elif _acepta(canal_, usuario=usuario):
                destinos.append((canal_, None, usuario, "", idioma))

    if (
        (Destinatario.SOLICITANTE, CORREO) in rutas
        and CORREO in registrados
        and ticket.solicitante_email
    ):
        destinos.append(
            (CORREO, None, None, ticket.solicitante_email, _idioma_solicitante(detalle))
        )
    return destinos


def _filas(
    *,
    evento: str,
    ticket: Ticket,
    detalle: DetalleTicket | None,
    datos: dict,
    jefes: list[Usuario] | None = None,
) -> list[Notificacion]:
    """The rows of one event, not saved (`_destinos` as model instances)."""
    ahora = timezone.now()
    return [
        Notificacion(
            evento=evento,
            canal=canal_,
            ticket=ticket,
            detalle=detalle,
            departamento=departamento,
            usuario=usuario,
            correo=correo,
            datos=datos,
            proximo_intento=ahora,
            idioma=idioma,
            message_id=_message_id_nuevo() if canal_ == CORREO else "",
        )
        for canal_, departamento, usuario, correo, idioma in _destinos(
            evento=evento, ticket=ticket, detalle=detalle, datos=datos, jefes=jefes
        )
    ]


def _acepta(nombre: str, **destino) -> bool:
    acepta = getattr(_canales[nombre], "acepta", None)
    return acepta is None or acepta(**destino)


def _message_id_nuevo(dominio: str | None = None) -> str:
    """A Message-ID of ours; pass `dominio_propio()` to make many."""
    from .ingest import dominio_propio  # ingest calls into this module
    from .mensajes import generar_message_id

    return generar_message_id(dominio or dominio_propio())


# --- Writing the outbox ---------------------------------------------------------------------


def notificar(
    *,
    evento: str,
    ticket: Ticket,
    detalle: DetalleTicket | None = None,
    datos: dict | None = None,
    unico: str | None = None,
) -> list[Notificacion]:
    """Write the outbox rows of one event in the caller's transaction; deliver after commit.

    With `unico` the event is recorded at most once ever: a later call (or a concurrent one,
    once the first commits) writes nothing and returns []. An event nobody is to hear of is
    then recorded as one discarded row, so it is not raised again either."""
    datos = dict(datos or {})
    if unico is None:
        return _guardar(_preparar(evento=evento, ticket=ticket, detalle=detalle, datos=datos))
    if Notificacion.objects.filter(unico=unico).exists():
        return []
    filas = _preparar(evento=evento, ticket=ticket, detalle=detalle, datos=datos)
    if not filas:
        filas = [
            Notificacion(
                evento=evento,
                canal="",
                ticket=ticket,
                detalle=detalle,
                datos=datos,
                estado=Estado.DESCARTADA,
                resultado="Sin destinatarios",
            )
        ]
    for i, n in enumerate(filas):
        n.unico = unico if i == 0 else f"{unico}#{i}"
    try:
        with transaction.atomic():
            Notificacion.objects.bulk_create(filas)
    except IntegrityError:
        return []  # raised concurrently by another transaction that committed first
    return _encolar_al_confirmar([n for n in filas if n.estado == Estado.PENDIENTE])


def notificar_respuesta(*, detalle: DetalleTicket) -> Notificacion:
    """Queue an agent's reply (a RESPUESTA entry) for mail to the requester, in the caller's
    transaction: one row whose Message-ID is the entry's, so the mail sent (and every retry of
    it) carries the id the thread stored. The mail is built from the entry: its sender,
    recipients, cc, subject, text, HTML, threading headers and attachments (`_correo`)."""
    ticket = detalle.ticket
    fila = Notificacion(
        evento=Evento.RESPUESTA,
        canal=CORREO,
        ticket=ticket,
        detalle=detalle,
        correo=detalle.para,
        idioma=settings.LANGUAGE_CODE,
        datos={"por": detalle.autor_id} if detalle.autor_id else {},
        proximo_intento=timezone.now(),
        message_id=detalle.message_id,
    )
    return _guardar([fila])[0]


def avisar_personas(
    *, usuarios, asunto: str, texto: str, datos: dict | None = None, unico: str
) -> list[Notificacion]:
    """The outbox's path for what is not about a ticket (registered as `sso.avisos`' delivery,
    so apps that may not import this one use it): one email row per active person with an
    address, `evento` AVISO, the subject and text as the caller wrote them (in the site's
    language; never a secret), written in the caller's transaction and delivered after commit.

    At most once per `unico`: a later call, or a concurrent one once the first commits, writes
    nothing and returns []. Nobody to tell writes nothing either, so a later call (a head
    appointed meanwhile) may still send it."""
    if Notificacion.objects.filter(unico=unico).exists():
        return []
    vistos, filas = set(), []
    ahora = timezone.now()
    datos = {**(datos or {}), "asunto": asunto[:900], "texto": texto}
    for usuario in usuarios:
        if usuario.pk in vistos or not usuario.is_active or not usuario.email:
            continue
        vistos.add(usuario.pk)
        filas.append(
            Notificacion(
                evento=Evento.AVISO,
                canal=CORREO,
                ticket=None,
                usuario=usuario,
                correo=usuario.email,
                datos=datos,
                proximo_intento=ahora,
                idioma=settings.LANGUAGE_CODE,
                message_id=_message_id_nuevo(),
            )
        )
    if not filas:
        return []
    for i, n in enumerate(filas):
        n.unico = unico if i == 0 else f"{unico}#{i}"
    try:
        with transaction.atomic():
            Notificacion.objects.bulk_create(filas)
    except IntegrityError:
        return []  # written concurrently by another transaction that committed first
    return _encolar_al_confirmar(filas)


def notificar_lote(eventos: list[dict]) -> list[int]:
    """`notificar` for many once-only events at once (the SLA sweep), in a constant number of
    queries whatever their number: each item holds notificar's keyword arguments, `unico`
    included, and its ticket is loaded with `departamento` and `asignado`. Returns the ids of
    the rows to deliver, whose delivery is enqueued after commit in chunks (`encolar_lote`).

    A key already recorded (by a concurrent transaction, or earlier: the sweep never passes
    one, as a ticket records what it raised in the same transaction) is found by the unique
    constraint rather than looked up first: the batch is then written one event at a time,
    each once, as `notificar` does.

    The rows are written as plain tuples: on PostgreSQL their ids are drawn from the table's
    sequence and the rows sent with COPY (no model instance, no INSERT to compile: most of the
    sweep's time was Django preparing two thousand rows); elsewhere with `bulk_create`."""
    from .ingest import dominio_propio  # ingest calls into this module

    if not eventos:
        return []
    departamentos = {e["ticket"].departamento_id for e in eventos} - {None}
    jefes: dict[int, list[Usuario]] = {d: [] for d in departamentos}
    if departamentos:
        for jefe in Usuario.objects.filter(
            departamento_id__in=departamentos, jefe=True, is_active=True
        ).order_by("id"):
            jefes[jefe.departamento_id].append(jefe)
    ahora = timezone.now()
    dominio = None
    filas = []
    for e in eventos:
        evento, ticket, detalle = e["evento"], e["ticket"], e.get("detalle")
        datos = dict(e.get("datos") or {})
        detalle_id = detalle.pk if detalle is not None else None
        destinos = _destinos(
            evento=evento,
            ticket=ticket,
            detalle=detalle,
            datos=datos,
            jefes=jefes.get(ticket.departamento_id, []),
        )
        if not destinos:  # recorded as discarded, so it is not raised again either
            filas.append(
                (evento, "", ticket.pk, detalle_id, None, None, "", "", datos, Estado.DESCARTADA,
                 0, None, "", "Sin destinatarios", "", ahora, None, e["unico"])
            )  # fmt: skip
        for i, (canal_, departamento, usuario, correo, idioma) in enumerate(destinos):
            message_id = ""
            if canal_ == CORREO:
                dominio = dominio or dominio_propio()
                message_id = _message_id_nuevo(dominio)
            filas.append(
                (evento, canal_, ticket.pk, detalle_id,
                 departamento.pk if departamento is not None else None,
                 usuario.pk if usuario is not None else None, correo, idioma, datos,
                 Estado.PENDIENTE, 0, ahora, "", "", message_id, ahora, None,
                 e["unico"] if i == 0 else f"{e['unico']}#{i}")
            )  # fmt: skip
    try:
        with transaction.atomic():
            pks = _escribir_filas(filas)
    except IntegrityError:  # some key is recorded: one at a time, each once
        return [n.pk for e in eventos for n in notificar(**e)]
    estado = _COLUMNAS.index("estado")
    pks = [pk for pk, fila in zip(pks, filas, strict=True) if fila[estado] == Estado.PENDIENTE]
    if pks:
        transaction.on_commit(lambda: encolar_lote(pks))
    return pks


# The columns of a row as `notificar_lote` builds it (attribute names).
_COLUMNAS = (
    "evento", "canal", "ticket_id", "detalle_id", "departamento_id", "usuario_id", "correo",
    "idioma", "datos", "estado", "intentos", "proximo_intento", "ultimo_error", "resultado",
    "message_id", "creado", "enviado_en", "unico",
)  # fmt: skip


def _por_copy() -> bool:
    """Whether rows go in by COPY (PostgreSQL) rather than `bulk_create`."""
    return connection.vendor == "postgresql"


def _escribir_filas(filas: list[tuple]) -> list[int]:
    """Write rows of `_COLUMNAS` values; their ids, in order."""
    if not filas:
        return []
    if not _por_copy():
        objetos = [Notificacion(**dict(zip(_COLUMNAS, fila, strict=True))) for fila in filas]
        Notificacion.objects.bulk_create(objetos)
        return [n.pk for n in objetos]
    tabla = Notificacion._meta.db_table
    datos = _COLUMNAS.index("datos")
    columnas = ", ".join(
        connection.ops.quote_name(Notificacion._meta.get_field(c).column)
        for c in ("id", *_COLUMNAS)
    )
    with connection.cursor() as cursor:
        cursor.execute(  # a constant: pg_get_serial_sequence() would run for every row
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            [f"{tabla}_id_seq", len(filas)],
        )
        pks = sorted(pk for (pk,) in cursor.fetchall())
        # The rows of one event share their `datos`: encoded once.
        previos, texto = None, ""
        copiar = cursor.copy(f"COPY {tabla} ({columnas}) FROM STDIN")
        with connection.wrap_database_errors, copiar as copy:  # a key taken: IntegrityError
            for pk, fila in zip(pks, filas, strict=True):
                if fila[datos] is not previos:
                    previos, texto = fila[datos], json.dumps(fila[datos])
                copy.write_row((pk, *fila[:datos], texto, *fila[datos + 1 :]))
    return pks


def _preparar(*, evento, ticket, detalle, datos) -> list[Notificacion]:
    filas = _filas(evento=evento, ticket=ticket, detalle=detalle, datos=datos)
    if evento == Evento.ACUSE and filas and not _acuse_procede(ticket=ticket, detalle=detalle):
        return []
    return filas


def _guardar(filas: list[Notificacion], *, lote: bool = False) -> list[Notificacion]:
    if filas:
        Notificacion.objects.bulk_create(filas)
    return _encolar_al_confirmar(filas, lote=lote)


def _encolar_al_confirmar(filas: list[Notificacion], *, lote: bool = False) -> list[Notificacion]:
    if filas:
        pks = [n.pk for n in filas]
        transaction.on_commit(lambda: encolar_lote(pks) if lote else encolar(pks))
    return filas


def _cargar_relacionados(tickets: list[Ticket]) -> None:
    """Load the department and assignee of every ticket with one query each (those not
    loaded yet), so building their rows costs no query per ticket."""
    for campo, modelo in (("departamento", Departamento), ("asignado", Usuario)):
        field = Ticket._meta.get_field(campo)
        faltan = [
            t for t in tickets if getattr(t, field.attname) is not None and not field.is_cached(t)
        ]
        if faltan:
            objetos = modelo.objects.in_bulk({getattr(t, f"{campo}_id") for t in faltan})
            for t in faltan:
                if getattr(t, f"{campo}_id") in objetos:
                    setattr(t, campo, objetos[getattr(t, f"{campo}_id")])


def _acuse_procede(*, ticket: Ticket, detalle: DetalleTicket | None) -> bool:
    """An acknowledgement goes to a person, at most once per NOTIFICACIONES_ACUSE_VENTANA_MINUTOS
    (two mail systems acknowledging each other would loop)."""
    email = ticket.solicitante_email.lower()
    return _acuse_posible(email=email, detalle=detalle) and not _acusados_recientes({email})


def _acuse_posible(*, email: str, detalle: DetalleTicket | None) -> bool:
    """Not to machine mail, nor to an address that sends it (no-reply, mailer-daemon)."""
    from .mensajes import remitente_automatico

    if not email or remitente_automatico(email):
        return False
    return detalle is None or not detalle.automatico


def _bloquear_acuses(emails: set[str]) -> None:
    """On PostgreSQL, inside a transaction: take each address's acknowledgement lock (an
    advisory lock held to the end of the transaction, in one order for everyone, so no two
    takers deadlock). Two transactions acknowledging the same person at once (two mailboxes'
    batches, the API beside the poller) then check the window one after the other, and the
    second sees the first's row. SQLite runs one writer at a time already."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    claves = sorted(
        int.from_bytes(
            hashlib.blake2b(f"acuse:{email}".encode(), digest_size=8).digest(), "big", signed=True
        )
        for email in emails
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS t(k)",
            [claves],
        )


def _acusados_recientes(emails: set[str]) -> set[str]:
    """Which of these (lowercase) addresses were acknowledged within the window: one probe of
    the (evento, correo, creado) index, acknowledgement rows keeping the address lowercase.
    Their acknowledgement locks are taken first (`_bloquear_acuses`): the answer holds until
    the transaction ends."""
    emails = {e for e in emails if e}
    if not emails:
        return set()
    _bloquear_acuses(emails)
    desde = timezone.now() - timedelta(minutes=settings.NOTIFICACIONES_ACUSE_VENTANA_MINUTOS)
    return set(
        Notificacion.objects.filter(evento=Evento.ACUSE, correo__in=emails, creado__gte=desde)
        .values_list("correo", flat=True)
        .distinct()
    )


def encolar(pks: list[int], *, countdown: float | None = None) -> None:
    """Enqueue the delivery of these rows. A broker that is down never breaks the caller: the
    rows stay pending and the sweeper enqueues them later."""
    from .tasks import entregar_notificacion_task

    for pk in pks:
        try:
            entregar_notificacion_task.apply_async(
                (pk,),
                countdown=countdown,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
            )
        except Exception:
            logger.warning("Could not enqueue notification %s; the sweeper will", pk, exc_info=True)
            return


def encolar_lote(pks: list[int], *, tamano: int = 100) -> None:
    """Enqueue the delivery of many rows as one task per `tamano` rows (a burst of thousands
    would otherwise cost a task each); a lost task is the sweeper's, as with `encolar`. The
    tasks share one producer, and their arguments are summarised for monitoring (first and
    last id, count) rather than printed whole."""
    from .tasks import entregar_notificaciones_task as tarea

    enviados = 0
    try:
        with tarea.app.producer_or_acquire() as producer:
            for i in range(0, len(pks), tamano):
                lote = pks[i : i + tamano]
                tarea.apply_async(
                    (lote,),
                    producer=producer,
                    argsrepr=f"([{lote[0]} … {lote[-1]}: {len(lote)} ids],)",
                    retry=True,
                    retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
                )
                enviados += len(lote)
    except Exception:
        logger.warning("Could not enqueue %s notifications; the sweeper will", len(pks) - enviados)


configuracion.conectar(PreferenciaNotificacion)


# --- Delivery -------------------------------------------------------------------------------


def _espera(intentos: int) -> timedelta:
    """Exponential backoff after the `intentos`-th failed attempt."""
    base = settings.NOTIFICACIONES_BACKOFF_SEGUNDOS
    segundos = min(base * 2 ** max(intentos - 1, 0), settings.NOTIFICACIONES_BACKOFF_MAX_SEGUNDOS)
    return timedelta(seconds=segundos)


def notificacion_entregar(*, pk: int) -> str:
    """Deliver one row if it is due and nobody else is delivering it; returns its new state.

    The row is claimed by a conditional UPDATE (pendiente → enviando, with a lease), so a task
    that runs twice, or two workers, send it once. The channel runs outside any transaction."""
    ahora = timezone.now()
    lease = timedelta(seconds=settings.NOTIFICACIONES_LEASE_SEGUNDOS)
    reclamada = Notificacion.objects.filter(
        pk=pk, estado=Estado.PENDIENTE, proximo_intento__lte=ahora
    ).update(estado=Estado.ENVIANDO, intentos=F("intentos") + 1, proximo_intento=ahora + lease)
    if not reclamada:
        return "omitida"
    n = Notificacion.objects.select_related(
        "ticket", "ticket__departamento", "ticket__asignado", "detalle", "departamento", "usuario"
    ).get(pk=pk)
    mia = Notificacion.objects.filter(pk=pk, estado=Estado.ENVIANDO, intentos=n.intentos)
    canal_ = _canales.get(n.canal)
    try:
        if canal_ is None:
            raise ErrorPermanente(f"no channel {n.canal!r} is registered")
        resultado = canal_.enviar(n)
    except ErrorPermanente as exc:
        logger.warning("Notification %s failed for good: %s", pk, exc)
        mia.update(estado=Estado.FALLIDA, ultimo_error=_texto_error(exc), proximo_intento=None)
        return Estado.FALLIDA
    except Exception as exc:  # ErrorPasajero, or anything unforeseen: try again later
        if not isinstance(exc, ErrorPasajero):
            logger.exception("Notification %s: unexpected error in channel %s", pk, n.canal)
        if n.intentos >= settings.NOTIFICACIONES_MAX_INTENTOS:
            logger.warning("Notification %s failed after %s attempts: %s", pk, n.intentos, exc)
            mia.update(estado=Estado.FALLIDA, ultimo_error=_texto_error(exc), proximo_intento=None)
            return Estado.FALLIDA
        espera = _espera(n.intentos)
        if mia.update(
            estado=Estado.PENDIENTE,
            ultimo_error=_texto_error(exc),
            proximo_intento=timezone.now() + espera,
        ):
            encolar([pk], countdown=espera.total_seconds())
        return Estado.PENDIENTE
    mia.update(
        estado=Estado.ENVIADA,
        resultado=str(resultado)[:255],
        message_id=n.message_id,
        ultimo_error="",
        enviado_en=timezone.now(),
        proximo_intento=None,
    )
    return Estado.ENVIADA


def _texto_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def notificaciones_barrer() -> int:
    """Re-queue rows whose task was lost (broker down at commit, worker killed); returns how
    many were enqueued. Rows still sending after their lease go back to pending (or fail, past
    the last attempt)."""
    ahora = timezone.now()
    vencidas = Notificacion.objects.filter(estado=Estado.ENVIANDO, proximo_intento__lte=ahora)
    vencidas.filter(intentos__gte=settings.NOTIFICACIONES_MAX_INTENTOS).update(
        estado=Estado.FALLIDA,
        ultimo_error="The sender stopped before finishing (lease expired).",
        proximo_intento=None,
    )
    vencidas.update(estado=Estado.PENDIENTE, proximo_intento=ahora)
    gracia = timedelta(seconds=settings.NOTIFICACIONES_GRACIA_SEGUNDOS)
    pks = list(
        Notificacion.objects.filter(estado=Estado.PENDIENTE, proximo_intento__lte=ahora - gracia)
        .order_by("proximo_intento")
        .values_list("pk", flat=True)[: settings.NOTIFICACIONES_BARRIDO_MAX]
    )
    encolar(pks)
    return len(pks)


def notificacion_reintentar(*, notificaciones) -> int:
    """Send failed or discarded rows again from the first attempt (admin's *retry*)."""
    pks = list(
        notificaciones.filter(estado__in=[Estado.FALLIDA, Estado.DESCARTADA])
        .exclude(canal="")
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        Notificacion.objects.filter(pk__in=pks).update(
            estado=Estado.PENDIENTE, intentos=0, proximo_intento=timezone.now()
        )
        transaction.on_commit(lambda: encolar(pks))
    return len(pks)


# --- The email channel ----------------------------------------------------------------------

_OBJETIVOS = {
    "primera_respuesta": gettext_lazy("first response"),
    "resolucion": gettext_lazy("resolution"),
}


class CanalCorreo:
    """Mail through Django's backend (SMTP): subject, text and HTML templates per event in the
    row's language, our Message-ID (stored on the row at creation, so a retry sends the same
    one), the `[Ticket #N]` tag, and the headers that mark it as ours when it comes back."""

    nombre = CORREO

    def enviar(self, notificacion: Notificacion) -> str:
        n = notificacion
        destinatario = n.correo or (n.usuario.email if n.usuario_id else "")
        if not destinatario:
            raise ErrorPermanente("no email address to send to")
        if not n.message_id:
            n.message_id = _message_id_nuevo()
        mensaje = _correo(n, destinatario)
        try:
            mensaje.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codigos = [codigo for codigo, _ in exc.recipients.values()]
            if codigos and all(500 <= codigo < 600 for codigo in codigos):
                raise ErrorPermanente(f"recipient refused: {exc.recipients}") from exc
            raise ErrorPasajero(f"recipient refused for now: {exc.recipients}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise ErrorPasajero(f"SMTP authentication failed: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise ErrorPermanente(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise ErrorPasajero(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ErrorPasajero(f"{type(exc).__name__}: {exc}") from exc
        return f"Enviada a {destinatario}"


def _correo_aviso(n: Notificacion, destinatario: str) -> EmailMultiAlternatives:
    """A notice (`avisar_personas`): the subject and text its writer gave, plain text."""
    datos = n.datos or {}
    asunto = " ".join(str(datos.get("asunto", "")).split())
    return EmailMultiAlternatives(
        subject=asunto[:900],
        body=str(datos.get("texto", "")),
        to=[destinatario],
        headers={
            "Message-ID": f"<{n.message_id}>",
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )


def _correo(n: Notificacion, destinatario: str) -> EmailMultiAlternatives:
    if n.evento == Evento.RESPUESTA:
        return _correo_respuesta(n, destinatario)
    if n.ticket_id is None:
        return _correo_aviso(n, destinatario)
    ticket = n.ticket
    plantilla = f"incidencias/notificaciones/{n.evento}"
    with translation.override(n.idioma or settings.LANGUAGE_CODE):
        vence = parse_datetime(str(n.datos.get("vence", ""))) if n.datos else None
        contexto = {
            "n": n,
            "ticket": ticket,
            "detalle": n.detalle,
            "extracto": _extracto(n.detalle),
            "objetivo": _OBJETIVOS.get(str(n.datos.get("objetivo", "")), ""),
            "vence": timezone.localtime(vence) if vence and timezone.is_aware(vence) else vence,
            # The staff page, for staff only: a requester gets no link into the back office.
            "enlace": "" if n.evento == Evento.ACUSE else enlace_ticket(ticket),
        }
        asunto = " ".join(render_to_string(f"{plantilla}/asunto.txt", contexto).split())
        if ticket.etiqueta.lower() not in asunto.lower():
            asunto = f"{asunto} {ticket.etiqueta}"
        texto = render_to_string(f"{plantilla}/cuerpo.txt", contexto)
        html = render_to_string(f"{plantilla}/cuerpo.html", contexto)
    headers = {
        "Message-ID": f"<{n.message_id}>",
        "X-Incidencias-Ticket": str(ticket.numero),
        "Auto-Submitted": "auto-replied" if n.evento == Evento.ACUSE else "auto-generated",
        "X-Auto-Response-Suppress": "All",
    }
    if n.evento == Evento.ACUSE and n.detalle is not None and n.detalle.message_id:
        headers["In-Reply-To"] = f"<{n.detalle.message_id}>"
        headers["References"] = f"<{n.detalle.message_id}>"
    mensaje = EmailMultiAlternatives(
        subject=asunto[:900], body=texto, to=[destinatario], headers=headers
    )
    mensaje.attach_alternative(html, "text/html")
    return mensaje


def _correo_respuesta(n: Notificacion, destinatario: str) -> EmailMultiAlternatives:
    """An agent's reply, as its thread entry holds it: a person's mail (no Auto-Submitted), with
    our Message-ID, In-Reply-To/References of the thread and its attachments."""
    detalle = n.detalle
    if detalle is None:
        raise ErrorPermanente("the reply's thread entry is gone")
    headers = {
        "Message-ID": f"<{n.message_id}>",
        "X-Incidencias-Ticket": str(n.ticket.numero),
    }
    if detalle.in_reply_to:
        headers["In-Reply-To"] = " ".join(f"<{i}>" for i in detalle.in_reply_to.split())
    if detalle.references:
        headers["References"] = " ".join(f"<{i}>" for i in detalle.references.split())
    mensaje = EmailMultiAlternatives(
        subject=detalle.asunto,
        body=detalle.texto,
        from_email=detalle.de or None,
        to=[destinatario],
        cc=[c.strip() for c in detalle.cc.split(",") if c.strip()],
        headers=headers,
    )
    if detalle.html:
        mensaje.attach_alternative(detalle.html, "text/html")
    for adjunto in detalle.adjuntos.order_by("id"):
        with adjunto.archivo.open("rb") as archivo:
            contenido = archivo.read()
        mensaje.attach(
            adjunto.nombre, contenido, adjunto.content_type or "application/octet-stream"
        )
    return mensaje


def _extracto(detalle: DetalleTicket | None, limite: int = 600) -> str:
    if detalle is None:
        return ""
    texto = (detalle.texto or "").strip()
    return texto if len(texto) <= limite else texto[:limite].rstrip() + "…"


# --- The events of the mail pipeline and of tickets -----------------------------------------


def notificar_ingresos(resultados) -> None:
    """The notifications of a batch of ingested messages (`ingest.Resultado`s), in its
    transaction: for a new ticket, its department, the acknowledgement and the assignee; for a
    customer's reply on an existing one, `respuesta_cliente`. Machine mail is stored but never
    notified. Fills each result's `notificacion_synology` / `notificacion_correo` with what was
    queued. The statements run per batch, not per message: one for the acknowledgement window
    of every requester, one INSERT, one task per hundred rows after commit."""
    por_resultado: list[tuple[object, list[Notificacion]]] = []
    nuevos, duplicados = [], []
    for resultado in resultados:
        ticket, detalle = resultado.ticket, resultado.detalle
        if ticket is None or detalle is None:
            continue
        if resultado.duplicado:
            duplicados.append(resultado)
        elif not detalle.automatico and detalle.tipo == DetalleTicket.Tipo.ENTRANTE:
            nuevos.append(resultado)

    _cargar_relacionados([r.ticket for r in nuevos])
    ya_acusados = _acusados_recientes(
        {r.ticket.solicitante_email.lower() for r in nuevos if r.creado}
    )
    filas: list[Notificacion] = []
    for resultado in nuevos:
        ticket, detalle = resultado.ticket, resultado.detalle
        if resultado.creado:
            eventos = [Evento.TICKET_NUEVO, Evento.ACUSE]
            if ticket.asignado_id:
                eventos.append(Evento.ASIGNACION)
        else:
            eventos = [Evento.RESPUESTA_CLIENTE]
        suyas = []
        for evento in eventos:
            preparadas = _filas(evento=evento, ticket=ticket, detalle=detalle, datos={})
            if evento == Evento.ACUSE and preparadas:
                email = ticket.solicitante_email.lower()
                if email in ya_acusados or not _acuse_posible(email=email, detalle=detalle):
                    continue
                ya_acusados.add(email)  # one per requester in this batch too
                for n in preparadas:
                    n.correo = email
            suyas += preparadas
        filas += suyas
        por_resultado.append((resultado, suyas))
    _guardar(filas, lote=True)

    if duplicados:  # the same mail again: where its notifications stand now
        previas: dict[int, list[Notificacion]] = {}
        for n in (
            Notificacion.objects.filter(detalle__in=[r.detalle for r in duplicados])
            .exclude(canal="")
            .select_related("departamento", "usuario")
            .order_by("id")
        ):
            previas.setdefault(n.detalle_id, []).append(n)
        por_resultado += [(r, previas.get(r.detalle.pk, [])) for r in duplicados]

    for resultado, suyas in por_resultado:
        resultado.notificacion_synology = resumen([n for n in suyas if n.canal == SYNOLOGY])
        resultado.notificacion_correo = resumen([n for n in suyas if n.canal == CORREO])


def resumen(filas: list[Notificacion]) -> str:
    """What happened to these rows, as correo/save says it: "En cola: canal soporte",
    "Enviada a canal soporte", "Fallida: …", or "No emitida"."""
    if not filas:
        return "No emitida"
    partes, en_cola = [], []
    for n in filas:
        if n.estado == Estado.ENVIADA:
            partes.append(n.resultado or f"Enviada a {n.destino}")
        elif n.estado in (Estado.PENDIENTE, Estado.ENVIANDO):
            en_cola.append(n.destino)
        else:
            partes.append(
                f"{'Fallida' if n.estado == Estado.FALLIDA else 'Descartada'}: {n.destino}"
            )
    if en_cola:
        partes.insert(0, f"En cola: {', '.join(en_cola)}")
    return "; ".join(partes)


def tickets_de_message_ids(message_ids) -> dict[str, int]:
    """The ticket of each of these Message-IDs that is one of our notifications (a reply to
    our acknowledgement threads to its ticket); one probe of the index on `message_id`."""
    message_ids = [m for m in message_ids if m]
    if not message_ids:
        return {}
    return dict(
        Notificacion.objects.filter(message_id__in=message_ids, ticket__isnull=False)
        .exclude(message_id="")  # the index holds only rows with one, whatever the list's size
        .order_by("id")
        .values_list("message_id", "ticket_id")
    )
