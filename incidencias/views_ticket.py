"""The ticket page (`/tickets/<numero>/`): the thread, the work on the ticket and its downloads.

Every view fetches through `_ticket_o_404` (404 outside `tickets_para_usuario`); every write
goes through a service; actions answer POST only and redirect back to the page.
"""

from dataclasses import dataclass
from datetime import datetime

import nh3
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from sso.models import Usuario

from . import mensajes
from .forms_ticket import (
    AsignarForm,
    EstadoForm,
    FusionarForm,
    NotaForm,
    PrioridadForm,
    RespuestaForm,
    TransferirForm,
)
from .models import Adjunto, DetalleTicket, Ticket
from .presencia import presencia_marcar
from .selectors import tickets_para_usuario
from .services import ticket_asignar, ticket_cambiar_estado

# Shown in the browser (not downloaded) only these: raster images that cannot carry a script.
IMAGENES_EN_LINEA = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _ticket_o_404(request, numero: int) -> Ticket:
    ticket = (
        tickets_para_usuario(usuario=request.user)
        .select_related("departamento", "asignado")
        .filter(numero=numero)
        .first()
    )
    if ticket is None:
        raise Http404
    return ticket


def _volver(ticket: Ticket):
    return redirect("ticket", numero=ticket.numero)


# --- What the page shows --------------------------------------------------------------------


def url_adjunto(ticket: Ticket, adjunto_id: int) -> str:
    return reverse("ticket-adjunto", args=[ticket.numero, adjunto_id])


def html_para_pagina(html: str, imagenes: dict[str, str]) -> str:
    """Mail HTML sanitised again at render (it was sanitised when stored), with `cid:` image
    sources pointing at the attachment's download URL; any other image source is dropped."""

    def filtro(tag, atributo, valor):
        if tag == "img" and atributo == "src":
            if not valor.lower().startswith("cid:"):
                return None
            return imagenes.get(valor[4:].strip("<>").lower())
        return valor

    return nh3.clean(
        html,
        tags=mensajes._ALLOWED_TAGS,
        attributes=mensajes._ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=filtro,
    )


def _hilo(ticket: Ticket) -> list[DetalleTicket]:
    """The thread with authors and attachments: two queries, whatever its length."""
    entradas = list(
        DetalleTicket.objects.filter(ticket=ticket)
        .select_related("autor")
        .prefetch_related(Prefetch("adjuntos", queryset=Adjunto.objects.order_by("id")))
        .order_by("creado", "id")
    )
    for entrada in entradas:
        adjuntos = list(entrada.adjuntos.all())
        for adjunto in adjuntos:
            adjunto.url = url_adjunto(ticket, adjunto.pk)
        entrada.lista_adjuntos = adjuntos
        if entrada.html:
            imagenes = {a.content_id.strip("<>").lower(): a.url for a in adjuntos if a.content_id}
            entrada.html_seguro = html_para_pagina(entrada.html, imagenes)
    return entradas


@dataclass
class Plazo:
    nombre: str
    vence: datetime | None
    cumplido: datetime | None
    pausado: datetime | None
    ahora: datetime

    @property
    def estado(self) -> str:
        if self.vence is None:
            return "sin_plazo"
        if self.cumplido is not None:
            return "cumplido" if self.cumplido <= self.vence else "cumplido_tarde"
        momento = self.pausado or self.ahora
        if momento >= self.vence:
            return "vencido"
        return "pausado" if self.pausado else "pendiente"


def sla_plazos(ticket: Ticket, ahora: datetime | None = None) -> list[Plazo]:
    """Where each SLA target stands, from the ticket's own fields (no query)."""
    ahora = ahora or timezone.now()
    return [
        Plazo(
            _("First response"),
            ticket.vence_primera_respuesta,
            ticket.primera_respuesta_en,
            ticket.sla_pausado_en,
            ahora,
        ),
        Plazo(
            _("Resolution"),
            ticket.vence_resolucion,
            ticket.resuelto_en,
            ticket.sla_pausado_en,
            ahora,
        ),
    ]


def _agentes(ticket: Ticket) -> list[Usuario]:
    """Who the ticket can be assigned to: the department's active agents and heads."""
    if ticket.departamento_id is None:
        return []
    return list(
        Usuario.objects.filter(departamento_id=ticket.departamento_id, is_active=True)
        .filter(Q(acceso_ticket=True) | Q(jefe=True))
        .order_by("nombre", "username")
    )


@login_required
@require_GET
def ticket_pagina(request, numero: int):
    ticket = _ticket_o_404(request, numero)
    agentes = _agentes(ticket)
    respuesta = RespuestaForm()
    contexto = {
        "ticket": ticket,
        "hilo": _hilo(ticket),
        "plazos": sla_plazos(ticket),
        "otros": presencia_marcar(ticket_id=ticket.pk, usuario=request.user),
        "form_respuesta": respuesta,
        "form_nota": NotaForm(),
        "form_asignar": AsignarForm(agentes=agentes, initial={"agente": ticket.asignado_id}),
        "form_estado": EstadoForm(initial={"estado": ticket.estado}),
        "form_prioridad": PrioridadForm(initial={"prioridad": ticket.prioridad}),
        "form_transferir": TransferirForm(initial={"departamento": ticket.departamento_id}),
        "form_fusionar": FusionarForm(),
        "presencia_segundos": settings.PRESENCIA_SEGUNDOS,
    }
    return render(request, "incidencias/ticket/pagina.html", contexto)


@login_required
@require_GET
def ticket_presencia(request, numero: int):
    """The page's poll: who else has it open, and its SLA timers (swapped out of band)."""
    ticket = _ticket_o_404(request, numero)
    contexto = {
        "ticket": ticket,
        "otros": presencia_marcar(ticket_id=ticket.pk, usuario=request.user),
        "plazos": sla_plazos(ticket),
        "fuera_de_banda": True,
    }
    return render(request, "incidencias/parciales/ticket_presencia.html", contexto)


@login_required
@require_GET
def ticket_adjunto(request, numero: int, adjunto_id: int):
    """An attachment, under the ticket's permission. Only raster images are shown inline;
    everything else is a download, and the browser is told not to guess types."""
    ticket = _ticket_o_404(request, numero)
    adjunto = Adjunto.objects.filter(pk=adjunto_id, detalle__ticket=ticket).first()
    if adjunto is None:
        raise Http404
    tipo = adjunto.content_type.split(";")[0].strip().lower()
    en_linea = tipo in IMAGENES_EN_LINEA
    try:
        archivo = adjunto.archivo.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    respuesta = FileResponse(
        archivo,
        as_attachment=not en_linea,
        filename=adjunto.nombre or f"adjunto-{adjunto.pk}",
        content_type=tipo if en_linea else "application/octet-stream",
    )
    respuesta["X-Content-Type-Options"] = "nosniff"
    respuesta["Content-Security-Policy"] = "default-src 'none'; sandbox"
    respuesta["Cache-Control"] = "private, no-store"
    return respuesta


# --- Actions --------------------------------------------------------------------------------


@login_required
@require_POST
def ticket_asignar_vista(request, numero: int):
    ticket = _ticket_o_404(request, numero)
    agentes = _agentes(ticket)
    form = AsignarForm(request.POST, agentes=agentes)
    if not form.is_valid():
        messages.error(request, _("Choose one of the department's agents."))
        return _volver(ticket)
    agente = form.agentes.get(form.cleaned_data["agente"])
    ticket_asignar(ticket=ticket, agente=agente, por=request.user)
    if agente is None:
        messages.success(request, _("The ticket is back in the queue."))
    else:
        nombre = agente.nombre or agente.get_full_name() or agente.username
        messages.success(request, _("Assigned to %(agente)s.") % {"agente": nombre})
    return _volver(ticket)


@login_required
@require_POST
def ticket_estado_vista(request, numero: int):
    ticket = _ticket_o_404(request, numero)
    form = EstadoForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a state."))
        return _volver(ticket)
    ticket = ticket_cambiar_estado(
        ticket=ticket, estado=form.cleaned_data["estado"], por=request.user
    )
    messages.success(request, _("State: %(estado)s.") % {"estado": ticket.get_estado_display()})
    return _volver(ticket)
