"""Services on tickets that staff pages, the API and the chat bot share."""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sso.models import Usuario

from .models import DetalleTicket, FiltroGuardado, Notificacion, Ticket
from .notificaciones import notificar
from .selectors import cola_filtros
from .sla import sla_estado_cambiado, sla_proximo


def _nota(texto) -> str:
    """A note for the ticket's thread, in the site's language whoever triggered it."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(texto())


def ticket_asignar(*, ticket: Ticket, agente: Usuario | None, por: Usuario | None = None) -> Ticket:
    """Give a ticket to an agent (None: back to the queue), note it in the thread and tell the
    agent. `por` is who did it (None: the system)."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
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
    `por` is who did it (None: the system)."""
    if estado not in Ticket.Estado.values:
        raise ValueError(f"unknown state {estado!r}")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        anterior = ticket.estado
        if anterior == estado:
            return ticket
        ticket.estado = estado
        campos = sla_estado_cambiado(ticket=ticket, anterior=anterior)
        ticket.save(update_fields=["estado", "actualizado", *campos])
        DetalleTicket.objects.create(
            ticket=ticket,
            tipo=DetalleTicket.Tipo.EVENTO,
            autor=por,
            texto=_nota(
                lambda: (
                    _("State: %(anterior)s → %(estado)s")
                    % {
                        "anterior": Ticket.Estado(anterior).label,
                        "estado": Ticket.Estado(estado).label,
                    }
                )
            ),
        )
    return ticket


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
