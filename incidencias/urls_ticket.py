"""URLs of the ticket page, mounted at /tickets/<numero>/."""

from django.urls import path

from . import views_ticket as v

urlpatterns = [
    path("", v.ticket_pagina, name="ticket"),
    path("presencia", v.ticket_presencia, name="ticket-presencia"),
    path("presencia/salir", v.ticket_presencia_salir, name="ticket-presencia-salir"),
    path("predefinida", v.ticket_predefinida, name="ticket-predefinida"),
    path("adjuntos/<int:adjunto_id>", v.ticket_adjunto, name="ticket-adjunto"),
    path("responder", v.ticket_responder_vista, name="ticket-responder"),
    path("nota", v.ticket_anotar_vista, name="ticket-nota"),
    path("asignar", v.ticket_asignar_vista, name="ticket-asignar"),
    path("estado", v.ticket_estado_vista, name="ticket-estado"),
    path("prioridad", v.ticket_prioridad_vista, name="ticket-prioridad"),
    path("transferir", v.ticket_transferir_vista, name="ticket-transferir"),
    path("fusionar", v.ticket_fusionar_vista, name="ticket-fusionar"),
]
