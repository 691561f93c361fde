"""URLs of the ticket page, mounted at /tickets/<numero>/."""

from django.urls import path

from . import views_ticket as v

urlpatterns = [
    path("", v.ticket_pagina, name="ticket"),
    path("presencia", v.ticket_presencia, name="ticket-presencia"),
    path("adjuntos/<int:adjunto_id>", v.ticket_adjunto, name="ticket-adjunto"),
    path("asignar", v.ticket_asignar_vista, name="ticket-asignar"),
    path("estado", v.ticket_estado_vista, name="ticket-estado"),
]
