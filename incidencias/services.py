"""Services on tickets that staff pages, the API and the chat bot share."""

from django.db import transaction

from sso.models import Usuario

from .models import DetalleTicket, Notificacion, Ticket
from .notificaciones import notificar


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
            texto=(
                f"Asignado a {agente.nombre or agente.username}" if agente else "Devuelto a la cola"
            ),
        )
        if agente is not None:
            notificar(
                evento=Notificacion.Evento.ASIGNACION,
                ticket=ticket,
                datos={"por": por.pk} if por is not None else {},
            )
    return ticket
