"""Services on tickets that staff pages, the API, the admin and the chat bot share.

Each takes model objects (permission checks are the caller's: `selectors.puede_trabajar`),
runs in one transaction, notes in the ticket's thread what a person would want to see, keeps
the SLA clock in step and writes its notifications to the outbox. A request that cannot be
carried out raises a `TicketError` (never an HTTP error): pages and the API turn it into theirs.
"""

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sso.models import Departamento, Usuario

from . import ingest, sla
from .mensajes import generar_message_id, nombre_de_archivo, sanitise_html
from .models import (
    Adjunto,
    CuentaCorreo,
    DetalleTicket,
    FiltroGuardado,
    Notificacion,
    Prioridad,
    RespuestaPredefinida,
    Ticket,
)
from .notificaciones import _filas, _guardar, notificar, notificar_respuesta
from .selectors import cola_filtros
from .sla import sla_estado_cambiado, sla_proximo

# --- Errors ---------------------------------------------------------------------------------


class TicketError(Exception):
    """A request on a ticket that cannot be carried out; `str()` is a sentence for a person
    (in the active language), `codigo` a stable name for machines."""

    codigo = "ticket_error"
    mensaje = gettext_lazy("The ticket cannot be changed that way.")

    def __init__(self, mensaje=None, **campos):
        self.campos = campos  # field name -> message, for forms and the API's `errors`
        super().__init__(str(mensaje or self.mensaje))


class DatosInvalidos(TicketError, ValueError):
    codigo = "datos_invalidos"
    mensaje = gettext_lazy("Some values are not valid.")


class SinDestinatario(TicketError):
    codigo = "sin_destinatario"
    mensaje = gettext_lazy("The ticket has no requester address to reply to.")


class TicketFusionado(TicketError):
    codigo = "ticket_fusionado"
    mensaje = gettext_lazy("The ticket was merged into another one.")


class FusionInvalida(TicketError):
    codigo = "fusion_invalida"
    mensaje = gettext_lazy("These tickets cannot be merged.")


def _nota(texto) -> str:
    """A note for the ticket's thread, in the site's language whoever triggered it."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(texto())


def ticket_asignar(*, ticket: Ticket, agente: Usuario | None, por: Usuario | None = None) -> Ticket:
    """Give a ticket to an agent (None: back to the queue), note it in the thread and tell the
    agent. `por` is who did it (None: the system). A ticket merged away is refused."""
    with transaction.atomic():
        ticket = _bloquear(ticket)
        if ticket.asignado_id == (agente.pk if agente else None):
            return ticket
        ticket.asignado = agente
        ticket.save(update_fields=["asignado", "actualizado"])
        DetalleTicket.objects.create(
            ticket=ticket,
            tipo=DetalleTicket.Tipo.EVENTO,
            autor=por,
            texto=_nota(
                lambda: (
                    _("Assigned to %(agente)s") % {"agente": agente.nombre or agente.username}
                    if agente
                    else _("Back to the queue")
                )
            ),
        )
        if agente is not None:
            notificar(
                evento=Notificacion.Evento.ASIGNACION,
                ticket=ticket,
                datos={"por": por.pk} if por is not None else {},
            )
    return ticket


def ticket_cambiar_estado(*, ticket: Ticket, estado: str, por: Usuario | None = None) -> Ticket:
    """Move a ticket to `estado`, keeping its SLA clock in step (stopped while waiting on the
    customer or solved, due dates moved on when it comes back), and note it in the thread.
    `por` is who did it (None: the system). A ticket merged away is refused."""
    _validar_estado(estado)
    with transaction.atomic():
        ticket = _bloquear(ticket)
        evento = _cambiar_estado(ticket, estado, por)
        if evento is not None:
            ticket.save(update_fields=["estado", "actualizado", *sla.CAMPOS])
            evento.save()
    return ticket


def _validar_estado(estado: str) -> None:
    if estado not in Ticket.Estado.values:
        raise DatosInvalidos(_("Unknown state %(estado)r.") % {"estado": estado}, estado=estado)


def _cambiar_estado(ticket: Ticket, estado: str, por) -> DetalleTicket | None:
    """Move a locked ticket to `estado` in memory (clock included); its thread entry, not
    saved (None: nothing changed)."""
    anterior = ticket.estado
    if anterior == estado:
        return None
    ticket.estado = estado
    sla_estado_cambiado(ticket=ticket, anterior=anterior)
    return _evento(
        ticket,
        por,
        lambda: (
            _("State: %(anterior)s → %(estado)s")
            % {"anterior": Ticket.Estado(anterior).label, "estado": Ticket.Estado(estado).label}
        ),
    )


def _evento(ticket: Ticket, por, texto) -> DetalleTicket:
    """A system event of the thread (not saved), in the site's language."""
    return DetalleTicket(
        ticket=ticket, tipo=DetalleTicket.Tipo.EVENTO, autor=por, texto=_nota(texto)
    )


def _bloquear(ticket: Ticket) -> Ticket:
    """The ticket, locked for this transaction; refused when it was merged away."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.fusionado_en is not None:
        raise TicketFusionado(
            _("Ticket #%(numero)s was merged into another ticket.") % {"numero": ticket.numero}
        )
    return ticket


def _nombre(usuario) -> str:
    if usuario is None:
        return ""
    return usuario.nombre_visible


def ticket_registrar_primera_respuesta(*, ticket: Ticket, en: datetime | None = None) -> Ticket:
    """Record the first response (an agent's first reply to the customer) once; later calls
    change nothing. Meets the first-response target."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.primera_respuesta_en is not None:
            return ticket
        ticket.primera_respuesta_en = en or timezone.now()
        ticket.sla_proximo = sla_proximo(ticket)
        ticket.save(update_fields=["primera_respuesta_en", "sla_proximo", "actualizado"])
    return ticket


def filtro_guardar(*, usuario: Usuario, nombre: str, consulta: str, orden: str = "sla"):
    """Save the queue's filters under `nombre` for `usuario` (the same name again replaces
    them). The query string is checked (FiltroInvalido for an unknown value) and kept with the
    queue's own keys only, without a page cursor."""
    nombre = (nombre or "").strip()
    if not nombre or len(nombre) > FiltroGuardado._meta.get_field("nombre").max_length:
        raise ValidationError({"nombre": _("Give the filter a name of up to 80 characters.")})
    consulta = QueryDict(consulta or "")
    cola_filtros(consulta)
    if orden not in FiltroGuardado.Orden.values:
        raise ValidationError({"orden": _("Unknown order.")})
    limpia = QueryDict(mutable=True)
    for clave in CLAVES_FILTRO:
        if valores := [v for v in consulta.getlist(clave) if v]:
            limpia.setlist(clave, valores)
    texto = limpia.urlencode()
    if len(texto) > FiltroGuardado._meta.get_field("consulta").max_length:
        raise ValidationError({"consulta": _("Too many filters to save.")})
    filtro, _creado = FiltroGuardado.objects.update_or_create(
        usuario=usuario, nombre=nombre, defaults={"consulta": texto, "orden": orden}
    )
    return filtro


def filtro_borrar(*, usuario: Usuario, filtro_id: int) -> None:
    """Delete one of `usuario`'s saved filters; another user's or a missing one raises
    FiltroGuardado.DoesNotExist (a 404)."""
    borrados, _tipos = FiltroGuardado.objects.filter(usuario=usuario, pk=filtro_id).delete()
    if not borrados:
        raise FiltroGuardado.DoesNotExist


# The query-string keys of the queue's filters (`selectors.cola_filtros`).
CLAVES_FILTRO = ("departamento", "estado", "prioridad", "asignado", "sla", "canal", "q")
# --- Replies and notes ----------------------------------------------------------------------


@dataclass
class AdjuntoNuevo:
    """A file an agent attaches to a reply."""

    nombre: str
    contenido: bytes
    content_type: str = "application/octet-stream"


def _adjunto_nuevo(adjunto) -> AdjuntoNuevo:
    """An `AdjuntoNuevo` from itself or an uploaded file (a page's or the API's)."""
    if isinstance(adjunto, AdjuntoNuevo):
        return adjunto
    contenido = adjunto.read()
    return AdjuntoNuevo(
        nombre=getattr(adjunto, "name", "") or "adjunto",
        contenido=contenido,
        content_type=getattr(adjunto, "content_type", "") or "application/octet-stream",
    )


def _direcciones(valores: Iterable[str], campo: str) -> list[str]:
    """Addresses, checked and lower-cased, each once."""
    limpias = []
    for valor in valores:
        direccion = parseaddr(str(valor))[1].strip().lower()
        try:
            validate_email(direccion)
        except ValidationError:
            raise DatosInvalidos(
                _("%(valor)s is not an email address.") % {"valor": valor},
                **{campo: _("%(valor)s is not an email address.") % {"valor": valor}},
            ) from None
        if direccion not in limpias:
            limpias.append(direccion)
    return limpias


def ticket_remitente(ticket: Ticket) -> str:
    """The From of mail to the ticket's requester: the department's mailbox (an active
    CuentaCorreo of the department whose user is an address) under the department's name, else
    DEFAULT_FROM_EMAIL."""
    if ticket.departamento_id:
        buzon = (
            CuentaCorreo.objects.filter(
                departamento_id=ticket.departamento_id,
                estado=CuentaCorreo.Estado.ACTIVO,
                user__contains="@",
            )
            .order_by("id")
            .values_list("user", flat=True)
            .first()
        )
        if buzon:
            return formataddr((ticket.departamento.nombre, buzon))
    return settings.DEFAULT_FROM_EMAIL


# How many Message-IDs of the thread a reply's References carries (the first and the latest).
REFERENCIAS_MAX = 20


def _hilo_ids(ticket: Ticket) -> tuple[str, list[str]]:
    """(In-Reply-To, References) of a reply on the ticket: the latest mail of its thread (the
    customer's, or ours), and the thread's first Message-ID followed by the latest ones."""
    correos = DetalleTicket.objects.filter(
        ticket=ticket,
        tipo__in=[DetalleTicket.Tipo.ENTRANTE, DetalleTicket.Tipo.RESPUESTA],
    ).exclude(message_id="")
    ultimos = list(correos.order_by("-id").values_list("message_id", flat=True)[:REFERENCIAS_MAX])
    if not ultimos:
        return "", []
    primero = correos.order_by("id").values_list("message_id", flat=True).first()
    recientes = ultimos if primero in ultimos else ultimos[: REFERENCIAS_MAX - 1]
    return ultimos[0], list(dict.fromkeys([primero, *reversed(recientes)]))


def _guardar_adjuntos(detalle: DetalleTicket, adjuntos: Sequence[AdjuntoNuevo]) -> list[Adjunto]:
    """Store the files by content (as the pipeline does, durably) and their rows."""
    archivos = ingest._Archivos()
    filas = []
    for adjunto in adjuntos:
        sha = hashlib.sha256(adjunto.contenido).hexdigest()
        nombre = archivos.nombrar(Adjunto.archivo.field, adjunto.contenido, "", sha)
        filas.append(
            Adjunto(
                detalle=detalle,
                nombre=nombre_de_archivo(adjunto.nombre)[:255] or "adjunto",
                content_type=(adjunto.content_type or "application/octet-stream")[:255],
                tamano=len(adjunto.contenido),
                sha256=sha,
                archivo=nombre,
            )
        )
    archivos.escribir()
    return Adjunto.objects.bulk_create(filas) if filas else []


def ticket_responder(
    *,
    ticket: Ticket,
    autor: Usuario,
    texto: str,
    html: str = "",
    cc: Iterable[str] = (),
    adjuntos: Sequence = (),
    en: datetime | None = None,
    estado: str | None = None,
) -> DetalleTicket:
    """Reply to the requester by mail: a RESPUESTA entry holding the mail (our Message-ID,
    In-Reply-To/References of the thread, subject `[Ticket #N] …`, cc, attachments), queued in
    the outbox (`notificar_respuesta`; a worker sends it), the first response recorded, and the
    `respuesta_enviada` event raised.

    State: `estado` moves the ticket there (e.g. `en_espera`: waiting on the customer, which
    stops the SLA clock); without it a new ticket becomes open (an agent is on it) and any
    other state is kept. cc addresses become participants of the ticket. `en` is when the
    reply was made (default: now). Raises SinDestinatario when the ticket has no requester
    address, DatosInvalidos for an empty text, a bad cc address or state, TicketFusionado for a
    ticket merged away."""
    texto, html = (texto or "").strip(), (html or "").strip()
    if html and not texto:
        from .mensajes import html_to_text

        texto = html_to_text(html).strip()
    if not texto:
        raise DatosInvalidos(_("The reply is empty."), texto=_("This field is required."))
    if estado is not None:
        _validar_estado(estado)
    copias = _direcciones(cc, "cc")
    adjuntos = [_adjunto_nuevo(a) for a in adjuntos]
    en = en or timezone.now()
    with transaction.atomic():
        ticket = _bloquear(ticket)
        para = ticket.solicitante_email.strip().lower()
        if not para:
            raise SinDestinatario()
        copias = [c for c in copias if c != para]
        in_reply_to, referencias = _hilo_ids(ticket)
        asunto = ticket.asunto or _nota(lambda: _("(no subject)"))
        if ticket.etiqueta.lower() not in asunto.lower():
            asunto = f"{ticket.etiqueta} {asunto}"
        detalle = DetalleTicket.objects.create(
            ticket=ticket,
            tipo=DetalleTicket.Tipo.RESPUESTA,
            autor=autor,
            de=ticket_remitente(ticket)[:998],
            para=para,
            cc=", ".join(copias),
            asunto=asunto[:998],
            texto=texto,
            html=sanitise_html(html) if html else "",
            fecha=en,
            message_id=generar_message_id(ingest.dominio_propio()),
            in_reply_to=in_reply_to,
            references=" ".join(referencias),
            sistema="portal",
        )
        _guardar_adjuntos(detalle, adjuntos)
        notificar_respuesta(detalle=detalle)
        ticket = ticket_registrar_primera_respuesta(ticket=ticket, en=en)

        campos = {"actualizado"}
        nuevos = [c for c in copias if c not in ticket.participantes]
        if nuevos:
            ticket.participantes = [*ticket.participantes, *nuevos]
            campos.add("participantes")
        destino = estado
        if destino is None and ticket.estado == Ticket.Estado.NUEVO:
            destino = Ticket.Estado.ABIERTO
        evento = _cambiar_estado(ticket, destino, autor) if destino else None
        if evento is not None:
            campos |= {"estado", *sla.CAMPOS}
        ticket.save(update_fields=sorted(campos))
        if evento is not None:
            evento.save()
        notificar(
            evento=Notificacion.Evento.RESPUESTA_ENVIADA,
            ticket=ticket,
            detalle=detalle,
            datos={"por": autor.pk} if autor is not None else {},
        )
    return detalle


def ticket_anotar(*, ticket: Ticket, autor: Usuario, texto: str) -> DetalleTicket:
    """An internal note on the thread: agents see it, nobody is mailed or notified."""
    texto = (texto or "").strip()
    if not texto:
        raise DatosInvalidos(_("The note is empty."), texto=_("This field is required."))
    with transaction.atomic():
        ticket = _bloquear(ticket)
        detalle = DetalleTicket.objects.create(
            ticket=ticket, tipo=DetalleTicket.Tipo.NOTA, autor=autor, texto=texto
        )
        ticket.save(update_fields=["actualizado"])
    return detalle


# --- Department, priority, merge ------------------------------------------------------------


def _recalcular_plazos(ticket: Ticket, ahora: datetime) -> list[str]:
    """Set the SLA due dates again (in memory) by the policy of the ticket's department and
    priority, counted from its creation; without a policy, no due dates. A warning or breach
    already raised is pending again when its moment moved past now. The fields to save."""
    campos = list(sla.CAMPOS_RELOJ)
    try:
        hay = sla.sla_fijar_plazos(ticket=ticket, desde=ticket.creado or ahora)
    except (ValueError, OverflowError):  # a calendar that cannot place them: none, as for mail
        hay = False
    if not hay:
        for campo in sla.CAMPOS_RELOJ:
            setattr(ticket, campo, None)
    for objetivo in sla.OBJETIVOS:
        for momento, levantado in (
            (f"aviso_{objetivo}", f"avisado_{objetivo}_en"),
            (f"vence_{objetivo}", f"incumplido_{objetivo}_en"),
        ):
            cuando = getattr(ticket, momento)
            if getattr(ticket, levantado) is not None and (cuando is None or cuando > ahora):
                setattr(ticket, levantado, None)
                campos.append(levantado)
    ticket.sla_proximo = sla_proximo(ticket)
    return campos


def ticket_transferir(*, ticket: Ticket, departamento: Departamento, por: Usuario | None) -> Ticket:
    """Hand a ticket to another department: its assignee is the one the new department's
    queue rule picks (none: its queue), its SLA due dates those of the new department's policy
    (from the ticket's creation). Noted in the thread; the new assignee is notified."""
    if departamento is None:
        raise DatosInvalidos(_("Choose a department."), departamento=_("This field is required."))
    with transaction.atomic():
        ticket = _bloquear(ticket)
        if ticket.departamento_id == departamento.pk:
            return ticket
        anterior = ticket.departamento
        ticket.departamento = departamento
        agente_id = ingest.agente_siguiente(departamento)
        ticket.asignado = Usuario.objects.get(pk=agente_id) if agente_id else None
        campos = _recalcular_plazos(ticket, timezone.now())
        ticket.save(update_fields=["departamento", "asignado", "actualizado", *campos])

        def texto():
            datos = {
                "anterior": anterior.nombre if anterior else _("no department"),
                "departamento": departamento.nombre,
                "agente": _nombre(ticket.asignado),
            }
            if ticket.asignado is not None:
                return (
                    _("Transferred from %(anterior)s to %(departamento)s; assigned to %(agente)s")
                    % datos
                )
            return _("Transferred from %(anterior)s to %(departamento)s; in its queue") % datos

        _evento(ticket, por, texto).save()
        if ticket.asignado is not None:
            notificar(
                evento=Notificacion.Evento.ASIGNACION,
                ticket=ticket,
                datos={"por": por.pk} if por is not None else {},
            )
    return ticket


def ticket_cambiar_prioridad(*, ticket: Ticket, prioridad: str, por: Usuario | None) -> Ticket:
    """Change a ticket's priority and set its SLA due dates by the policy of that priority
    (from the ticket's creation); noted in the thread."""
    if prioridad not in Prioridad.values:
        raise DatosInvalidos(
            _("Unknown priority %(prioridad)r.") % {"prioridad": prioridad}, prioridad=prioridad
        )
    with transaction.atomic():
        ticket = _bloquear(ticket)
        anterior = ticket.prioridad
        if anterior == prioridad:
            return ticket
        ticket.prioridad = prioridad
        campos = _recalcular_plazos(ticket, timezone.now())
        ticket.save(update_fields=["prioridad", "actualizado", *campos])
        _evento(
            ticket,
            por,
            lambda: (
                _("Priority: %(anterior)s → %(prioridad)s")
                % {"anterior": Prioridad(anterior).label, "prioridad": Prioridad(prioridad).label}
            ),
        ).save()
    return ticket


def _final_de(ticket: Ticket) -> Ticket:
    """The ticket at the end of a chain of merges."""
    vistos = {ticket.pk}
    while ticket.fusionado_en is not None and ticket.relacionado_id is not None:
        siguiente = Ticket.objects.filter(pk=ticket.relacionado_id).first()
        if siguiente is None or siguiente.pk in vistos:
            break
        vistos.add(siguiente.pk)
        ticket = siguiente
    return ticket


def ticket_fusionar(*, origen: Ticket, destino: Ticket, por: Usuario | None) -> Ticket:
    """Merge `origen` into `destino`: its thread entries (their attachments with them) move to
    `destino`, its requester and cc join `destino`'s participants, and `origen` is closed,
    pointing at `destino` (`relacionado`, `fusionado_en`). Both threads note it. Mail that
    later refers to `origen` (its Message-IDs, its subject tag, our mail about it) lands on
    `destino` (`ingest._seguir_fusiones`). Returns `destino`.

    Refused (FusionInvalida / TicketFusionado): a ticket into itself, a ticket already merged
    away, or into a ticket merged away (the error names the one it ended in)."""
    if origen.pk == destino.pk:
        raise FusionInvalida(_("A ticket cannot be merged into itself."))
    with transaction.atomic():
        bloqueados = {
            t.pk: t
            for t in Ticket.objects.select_for_update()
            .filter(pk__in=[origen.pk, destino.pk])
            .order_by("pk")
        }
        origen, destino = bloqueados[origen.pk], bloqueados[destino.pk]
        if origen.fusionado_en is not None:
            raise TicketFusionado(
                _("Ticket #%(numero)s was already merged into another ticket.")
                % {"numero": origen.numero}
            )
        if destino.fusionado_en is not None:
            final = _final_de(destino)
            if final.pk == origen.pk:
                raise FusionInvalida(_("A ticket cannot be merged into itself."))
            raise FusionInvalida(
                _("Ticket #%(numero)s was merged into ticket #%(final)s: merge into that one.")
                % {"numero": destino.numero, "final": final.numero}
            )
        ahora = timezone.now()
        DetalleTicket.objects.filter(ticket=origen).update(ticket=destino)

        propios = {destino.solicitante_email.lower()} | ingest._propias()
        nuevos = [
            a
            for a in [origen.solicitante_email.lower(), *origen.participantes]
            if a and a not in propios and a not in destino.participantes
        ]
        destino.participantes = [*destino.participantes, *dict.fromkeys(nuevos)]
        destino.save(update_fields=["participantes", "actualizado"])

        cierre = _cambiar_estado(origen, Ticket.Estado.CERRADO, por)
        origen.relacionado, origen.fusionado_en = destino, ahora
        origen.save(
            update_fields=["estado", "relacionado", "fusionado_en", "actualizado", *sla.CAMPOS]
        )
        eventos = [
            _evento(
                origen,
                por,
                lambda: _("Merged into ticket #%(numero)s") % {"numero": destino.numero},
            ),
            _evento(
                destino,
                por,
                lambda: (
                    _("Ticket #%(numero)s (%(asunto)s) was merged into this one")
                    % {"numero": origen.numero, "asunto": origen.asunto}
                ),
            ),
        ]
        if cierre is not None:
            eventos.insert(0, cierre)
        DetalleTicket.objects.bulk_create(eventos)
    return destino


# --- Tickets made by hand -------------------------------------------------------------------


def ticket_crear_manual(
    *,
    departamento: Departamento,
    asunto: str,
    texto: str,
    solicitante_nombre: str = "",
    solicitante_email: str = "",
    prioridad: str = Prioridad.NORMAL,
    por: Usuario | None,
    canal: str = Ticket.Canal.PORTAL,
) -> Ticket:
    """A ticket taken by hand (a phone call) or through the API: opened as the pipeline opens
    mail's (`ingest.tickets_abrir`: number, agent by the department's rule, SLA clock), the
    requester's words as its first entry (written down by `por`), and the pipeline's
    notifications (the department, the acknowledgement to the requester, the assignee)."""
    asunto, texto = (asunto or "").strip(), (texto or "").strip()
    errores = {}
    if not asunto:
        errores["asunto"] = _("This field is required.")
    if not texto:
        errores["texto"] = _("This field is required.")
    if departamento is None:
        errores["departamento"] = _("This field is required.")
    if prioridad not in Prioridad.values:
        errores["prioridad"] = _("Unknown priority %(prioridad)r.") % {"prioridad": prioridad}
    if canal not in Ticket.Canal.values:
        errores["canal"] = _("Unknown channel %(canal)r.") % {"canal": canal}
    if errores:
        raise DatosInvalidos(**errores)
    email = _direcciones([solicitante_email], "solicitante_email")[0] if solicitante_email else ""
    solicitante_nombre = (solicitante_nombre or "").strip()[:255]
    with transaction.atomic():
        ahora = timezone.now()
        ticket = Ticket(
            asunto=asunto[:998],
            departamento=departamento,
            solicitante_nombre=solicitante_nombre,
            solicitante_email=email,
            prioridad=prioridad,
            canal=canal,
        )
        ingest.tickets_abrir([ticket], ahora=ahora)
        detalle = DetalleTicket.objects.create(
            ticket=ticket,
            tipo=DetalleTicket.Tipo.ENTRANTE,
            autor=por,
            de=formataddr((solicitante_nombre, email)) if email else solicitante_nombre,
            asunto=asunto[:998],
            texto=texto,
            fecha=ahora,
            sistema=canal,
        )
        _evento(
            ticket,
            por,
            lambda: (
                _("Opened by %(agente)s (%(canal)s)")
                % {"agente": _nombre(por) or _("the system"), "canal": Ticket.Canal(canal).label}
            ),
        ).save()
        from .notificaciones import notificar_ingresos

        notificar_ingresos([ingest.Resultado(ticket=ticket, detalle=detalle, creado=True)])
    return ticket


# --- Canned responses -----------------------------------------------------------------------

# `{{ objeto.campo }}`: nothing else is read from the text (no template engine on it).
_MARCADOR = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def respuesta_predefinida_render(
    *, respuesta: RespuestaPredefinida, ticket: Ticket, agente: Usuario | None
) -> str:
    """The canned response's text with its placeholders filled (plain text, to be escaped
    where shown as HTML). Only the listed placeholders are known; any other is left as typed."""
    departamento = ticket.departamento if ticket.departamento_id else None
    valores = {
        ("ticket", "numero"): str(ticket.numero),
        ("ticket", "asunto"): ticket.asunto,
        ("solicitante", "nombre"): ticket.solicitante_nombre or ticket.solicitante_email,
        ("solicitante", "email"): ticket.solicitante_email,
        ("agente", "nombre"): _nombre(agente),
        ("agente", "email"): agente.email if agente is not None else "",
        ("departamento", "nombre"): departamento.nombre if departamento is not None else "",
    }
    return _MARCADOR.sub(lambda m: valores.get((m[1], m[2]), m[0]), respuesta.texto)


# --- Many tickets at once -------------------------------------------------------------------


def _bloquear_lote(tickets: Iterable[Ticket]) -> list[Ticket]:
    """The tickets (not merged away), locked in id order."""
    pks = {t.pk for t in tickets}
    return list(
        Ticket.objects.select_for_update()
        .filter(pk__in=pks, fusionado_en__isnull=True)
        .order_by("pk")
    )


def tickets_asignar_lote(
    *, tickets: Iterable[Ticket], agente: Usuario | None, por: Usuario | None
) -> list[Ticket]:
    """`ticket_asignar` for many tickets in a constant number of queries: each changed ticket
    gets its thread event and the agent's notifications. Returns the tickets changed."""
    if agente is not None and not agente.is_active:
        raise DatosInvalidos(_("The agent is not active."), agente=_("The agent is not active."))
    from .notificaciones import _cargar_relacionados

    with transaction.atomic():
        ahora = timezone.now()
        cambiados = [
            t for t in _bloquear_lote(tickets) if t.asignado_id != (agente.pk if agente else None)
        ]
        if not cambiados:
            return []
        for ticket in cambiados:
            ticket.asignado, ticket.actualizado = agente, ahora
        Ticket.objects.bulk_update(cambiados, ["asignado", "actualizado"])
        nombre = _nombre(agente)
        DetalleTicket.objects.bulk_create(
            [
                _evento(
                    t,
                    por,
                    lambda: (
                        _("Assigned to %(agente)s") % {"agente": nombre}
                        if agente
                        else _("Back to the queue")
                    ),
                )
                for t in cambiados
            ]
        )
        if agente is not None:
            _cargar_relacionados(cambiados)
            datos = {"por": por.pk} if por is not None else {}
            filas = []
            for ticket in cambiados:
                filas += _filas(
                    evento=Notificacion.Evento.ASIGNACION, ticket=ticket, detalle=None, datos=datos
                )
            _guardar(filas, lote=True)
    return cambiados


def tickets_cambiar_estado_lote(
    *, tickets: Iterable[Ticket], estado: str, por: Usuario | None
) -> list[Ticket]:
    """`ticket_cambiar_estado` for many tickets in a constant number of queries (plus one per
    department and priority whose SLA policy is not cached yet): each changed ticket's clock
    kept in step and its thread event written. Returns the tickets changed."""
    _validar_estado(estado)
    with transaction.atomic():
        ahora = timezone.now()
        cambiados, eventos = [], []
        for ticket in _bloquear_lote(tickets):
            evento = _cambiar_estado(ticket, estado, por)
            if evento is not None:
                ticket.actualizado = ahora
                cambiados.append(ticket)
                eventos.append(evento)
        if cambiados:
            Ticket.objects.bulk_update(cambiados, ["estado", "actualizado", *sla.CAMPOS])
            DetalleTicket.objects.bulk_create(eventos)
    return cambiados
