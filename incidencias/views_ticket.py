"""The ticket page (`/tickets/<numero>/`): the thread, the work on the ticket and its downloads.

Every view fetches through `_ticket_o_404` (404 outside `tickets_para_usuario`), actions through
`_ticket_para_trabajar` (also 403 for who may only read); every write goes through a service;
actions answer POST only and redirect back to the page.
"""

import hashlib
import importlib.metadata
from dataclasses import dataclass
from datetime import datetime

import nh3
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
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
from .models import Adjunto, DetalleTicket, Prioridad, Ticket
from .presencia import presencia_marcar, presencia_salir, vista_nueva
from .selectors import (
    hilo,
    puede_trabajar,
    respuestas_predefinidas,
    ticket_para_usuario,
    tickets_para_usuario,
)
from .services import (
    TicketError,
    respuesta_predefinida_render,
    ticket_anotar,
    ticket_asignar,
    ticket_cambiar_estado,
    ticket_cambiar_prioridad,
    ticket_fusionar,
    ticket_responder,
    ticket_transferir,
)

# Shown in the browser (not downloaded) only these: raster images that cannot carry a script.
IMAGENES_EN_LINEA = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _ticket_o_404(request, numero: int) -> Ticket:
    try:
        return ticket_para_usuario(usuario=request.user, numero_o_pk=numero)
    except Ticket.DoesNotExist:
        raise Http404 from None


def _ticket_para_trabajar(request, numero: int) -> Ticket:
    """The ticket, for a change: 404 outside what the user sees, 403 where they only read
    (staff without the permission to change tickets)."""
    ticket = _ticket_o_404(request, numero)
    if not puede_trabajar(request.user, ticket):
        raise PermissionDenied
    return ticket


def _volver(ticket: Ticket):
    return redirect("ticket", numero=ticket.numero)


def _volver_o_salir(request, ticket: Ticket):
    """Back to the ticket, or to the queue when the user no longer sees it (it went to another
    department)."""
    if tickets_para_usuario(usuario=request.user).filter(pk=ticket.pk).exists():
        return _volver(ticket)
    return redirect("cola")


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


# What the sanitised bodies depend on besides their HTML: html_para_pagina's rules (bump the
# number when its code changes) and the sanitiser's version and allow-lists, so an upgrade of
# nh3 or a tighter list never serves a body sanitised under the old ones.
_VERSION_SANEADO = hashlib.blake2b(
    repr(
        (
            1,
            importlib.metadata.version("nh3"),
            sorted(mensajes._ALLOWED_TAGS),
            sorted((tag, sorted(attrs)) for tag, attrs in mensajes._ALLOWED_ATTRIBUTES.items()),
        )
    ).encode(),
    digest_size=8,
).hexdigest()
# Bodies larger than this are sanitised on every view instead of filling the cache.
_SANEADO_MAX_CACHE = 512 * 1024


def _clave_saneado(entrada: DetalleTicket, imagenes: dict[str, str]) -> str:
    """The cache key of an entry's page HTML: its id and a digest of what the result depends
    on (the stored HTML and the images' URLs, which name the ticket), so a key never outlives
    its content."""
    huella = hashlib.blake2b(digest_size=16)
    huella.update(entrada.html.encode())
    for cid, url in sorted(imagenes.items()):
        huella.update(f"\0{cid}\0{url}".encode())
    return f"hilo:html:{_VERSION_SANEADO}:{entrada.pk}:{huella.hexdigest()}"


def _hilo(ticket: Ticket) -> list[DetalleTicket]:
    """The thread (`selectors.hilo`: constant queries), each attachment with its URL and each
    HTML body sanitised for the page. Sanitising costs about 0.1 ms for a typical mail and
    1 ms for a heavy one, on every view of a long thread: the results are kept in the cache
    (one round trip for the whole thread), keyed by their content."""
    entradas = hilo(ticket=ticket)
    pendientes = {}
    for entrada in entradas:
        adjuntos = entrada.lista_adjuntos
        for adjunto in adjuntos:
            adjunto.url = url_adjunto(ticket, adjunto.pk)
        if entrada.html:
            imagenes = {a.content_id.strip("<>").lower(): a.url for a in adjuntos if a.content_id}
            if len(entrada.html) > _SANEADO_MAX_CACHE:
                entrada.html_seguro = html_para_pagina(entrada.html, imagenes)
            else:
                pendientes[_clave_saneado(entrada, imagenes)] = (entrada, imagenes)
    if pendientes:
        guardados = cache.get_many(pendientes)
        nuevos = {}
        for clave, (entrada, imagenes) in pendientes.items():
            if clave in guardados:
                entrada.html_seguro = guardados[clave]
            else:
                entrada.html_seguro = nuevos[clave] = html_para_pagina(entrada.html, imagenes)
        if nuevos:
            cache.set_many(nuevos, settings.HILO_HTML_CACHE_SECONDS)
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
        .only("id", "username", "nombre", "first_name", "last_name")
        .order_by("nombre", "username")
    )


def _pagina(request, ticket: Ticket, status: int = 200, **formularios):
    """The page; `formularios` replace the empty forms (a form sent back with its errors)."""
    agentes = _agentes(ticket)
    trabajar = puede_trabajar(request.user, ticket)
    predefinidas = list(respuestas_predefinidas(ticket=ticket)) if trabajar else []
    vista = vista_nueva()  # this load of the page, for its poll and its leave beacon
    contexto = {
        "ticket": ticket,
        "hilo": _hilo(ticket),
        "plazos": sla_plazos(ticket),
        "otros": presencia_marcar(ticket_id=ticket.pk, usuario=request.user, vista=vista),
        "vista": vista,
        "puede_trabajar": trabajar,
        "predefinidas": predefinidas,
        "form_respuesta": RespuestaForm(),
        "form_nota": NotaForm(),
        "form_asignar": AsignarForm(agentes=agentes, initial={"agente": ticket.asignado_id}),
        "form_estado": EstadoForm(initial={"estado": ticket.estado}),
        "form_prioridad": PrioridadForm(initial={"prioridad": ticket.prioridad}),
        "form_transferir": TransferirForm(initial={"departamento": ticket.departamento_id}),
        "form_fusionar": FusionarForm(),
        "presencia_segundos": settings.PRESENCIA_SEGUNDOS,
    }
    contexto.update(formularios)
    return render(request, "incidencias/ticket/pagina.html", contexto, status=status)


@login_required
@require_GET
def ticket_pagina(request, numero: int):
    ticket = _ticket_o_404(request, numero)
    formularios = {}
    elegida = request.GET.get("predefinida", "")
    if elegida.isdigit() and puede_trabajar(request.user, ticket):
        texto = _predefinida_texto(request, ticket, int(elegida))
        if texto is not None:
            formularios["form_respuesta"] = RespuestaForm(initial={"texto": texto})
    return _pagina(request, ticket, **formularios)


def _predefinida_texto(request, ticket: Ticket, pk: int) -> str | None:
    respuesta = respuestas_predefinidas(ticket=ticket).filter(pk=pk).first()
    if respuesta is None:
        return None
    return respuesta_predefinida_render(respuesta=respuesta, ticket=ticket, agente=request.user)


@login_required
@require_GET
def ticket_predefinida(request, numero: int):
    """htmx: the reply's text box with a canned response filled in."""
    ticket = _ticket_para_trabajar(request, numero)
    elegida = request.GET.get("predefinida", "")
    texto = _predefinida_texto(request, ticket, int(elegida)) if elegida.isdigit() else None
    if texto is None:
        raise Http404
    form = RespuestaForm(initial={"texto": texto})
    return render(request, "incidencias/parciales/ticket_texto.html", {"campo": form["texto"]})


@login_required
@require_GET
def ticket_presencia(request, numero: int):
    """The page's poll: who else has it open, and its SLA timers (swapped out of band)."""
    ticket = _ticket_o_404(request, numero)
    vista = request.GET.get("vista", "")[:40]
    contexto = {
        "ticket": ticket,
        "otros": presencia_marcar(ticket_id=ticket.pk, usuario=request.user, vista=vista),
        "plazos": sla_plazos(ticket),
        "fuera_de_banda": True,
    }
    return render(request, "incidencias/parciales/ticket_presencia.html", contexto)


@login_required
@require_POST
def ticket_presencia_salir(request, numero: int):
    """The page was left (its script sends a beacon on `pagehide`, with the view's id): the
    others stop seeing this user at their next poll, not when the mark expires, unless a newer
    view of theirs (a reload, the page after a form) has marked them since."""
    ticket = _ticket_o_404(request, numero)
    presencia_salir(
        ticket_id=ticket.pk, usuario=request.user, vista=request.POST.get("vista", "")[:40]
    )
    return HttpResponse(status=204)


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
def ticket_responder_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = RespuestaForm(request.POST, request.FILES)
    if form.is_valid():
        datos = form.cleaned_data
        try:
            ticket_responder(
                ticket=ticket,
                autor=request.user,
                texto=datos["texto"],
                cc=datos["cc"],
                adjuntos=datos["adjuntos"],
                estado=datos["estado"] or None,
            )
        except TicketError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Reply sent to %(correo)s.") % {"correo": ticket.solicitante_email}
            )
            return _volver(ticket)
    return _pagina(request, ticket, status=400, form_respuesta=form)


@login_required
@require_POST
def ticket_anotar_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = NotaForm(request.POST)
    if form.is_valid():
        try:
            ticket_anotar(ticket=ticket, autor=request.user, texto=form.cleaned_data["texto"])
        except TicketError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Note added."))
            return _volver(ticket)
    return _pagina(request, ticket, status=400, form_nota=form)


def _accion(request, ticket: Ticket, hacer, exito: str):
    """Run a service for a one-field action; its refusal becomes an error message."""
    try:
        resultado = hacer()
    except TicketError as exc:
        messages.error(request, str(exc))
        return _volver(ticket)
    messages.success(request, exito if isinstance(exito, str) else exito(resultado))
    return _volver_o_salir(request, resultado or ticket)


@login_required
@require_POST
def ticket_asignar_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = AsignarForm(request.POST, agentes=_agentes(ticket))
    if not form.is_valid():
        messages.error(request, _("Choose one of the department's agents."))
        return _volver(ticket)
    agente = form.agentes.get(form.cleaned_data["agente"])
    if agente is None:
        exito = _("The ticket is back in the queue.")
    else:
        exito = _("Assigned to %(agente)s.") % {"agente": agente.nombre_visible}
    return _accion(
        request,
        ticket,
        lambda: ticket_asignar(ticket=ticket, agente=agente, por=request.user),
        exito,
    )


@login_required
@require_POST
def ticket_estado_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = EstadoForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a state."))
        return _volver(ticket)
    estado = form.cleaned_data["estado"]
    exito = _("State: %(estado)s.") % {"estado": Ticket.Estado(estado).label}
    return _accion(
        request,
        ticket,
        lambda: ticket_cambiar_estado(ticket=ticket, estado=estado, por=request.user),
        exito,
    )


@login_required
@require_POST
def ticket_prioridad_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = PrioridadForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a priority."))
        return _volver(ticket)
    prioridad = form.cleaned_data["prioridad"]
    exito = _("Priority: %(prioridad)s.") % {"prioridad": Prioridad(prioridad).label}
    return _accion(
        request,
        ticket,
        lambda: ticket_cambiar_prioridad(ticket=ticket, prioridad=prioridad, por=request.user),
        exito,
    )


@login_required
@require_POST
def ticket_transferir_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = TransferirForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a department."))
        return _volver(ticket)
    departamento = form.cleaned_data["departamento"]
    exito = _("Transferred to %(departamento)s.") % {"departamento": departamento.nombre}
    return _accion(
        request,
        ticket,
        lambda: ticket_transferir(ticket=ticket, departamento=departamento, por=request.user),
        exito,
    )


@login_required
@require_POST
def ticket_fusionar_vista(request, numero: int):
    ticket = _ticket_para_trabajar(request, numero)
    form = FusionarForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the number of the other ticket and confirm the merge."))
        return _volver(ticket)
    try:
        destino = ticket_para_usuario(
            usuario=request.user, numero_o_pk=form.cleaned_data["destino"]
        )
    except Ticket.DoesNotExist:
        destino = None
    if destino is None or not puede_trabajar(request.user, destino):
        messages.error(request, _("There is no ticket with that number you can work on."))
        return _volver(ticket)
    return _accion(
        request,
        ticket,
        lambda: ticket_fusionar(origen=ticket, destino=destino, por=request.user),
        lambda d: _("Merged into ticket #%(numero)s.") % {"numero": d.numero},
    )
