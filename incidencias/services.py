"""Services on tickets that staff pages, the API and the chat bot share."""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sso.models import Usuario

from .models import DetalleTicket, Notificacion, Ticket
from .notificaciones import notificar
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
