"""The agents' portal: the dashboard, the queue (filters, search, keyset pages, bulk actions,
saved filters) and a ticket taken by hand. Reads through the selectors, writes through the
services; every page answers 404 to someone who works no tickets."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from sso.models import Departamento

from . import selectors, services
from .forms import (
    FiltroGuardarForm,
    FiltrosForm,
    LoteForm,
    TicketNuevoForm,
    agentes_asignables,
    departamentos_trabajables,
)
from .models import FiltroGuardado, Ticket

# The queue's query-string keys that a page link or a saved filter carries (the cursor aside).
CLAVES_COLA = (*services.CLAVES_FILTRO, "orden")


def _agente(request):
    """The signed-in user if they work tickets (agents, heads, staff); 404 for anyone else."""
    if not selectors.es_agente(request.user):
        raise Http404
    return request.user


def url_ticket(numero: int) -> str:
    """The ticket page's address."""
    return reverse("ticket", kwargs={"numero": numero})


def _consulta(datos: QueryDict) -> QueryDict:
    """The queue's filters of a query string, without the page cursor or empty values."""
    limpia = QueryDict(mutable=True)
    for clave in CLAVES_COLA:
        if valores := [v for v in datos.getlist(clave) if v]:
            limpia.setlist(clave, valores)
    return limpia


def _volver(request) -> str:
    """Where a queue action returns: the queue as the user left it."""
    destino = request.POST.get("siguiente", "")
    seguro = url_has_allowed_host_and_scheme(
        destino, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return destino if seguro and destino.startswith(reverse("cola")) else reverse("cola")


def _a_la_cola(**filtros) -> str:
    """The queue's address with these filters (a list value repeats its key)."""
    consulta = QueryDict(mutable=True)
    for clave, valor in filtros.items():
        consulta.setlist(
            clave, [str(v) for v in valor] if isinstance(valor, list | tuple) else [str(valor)]
        )
    return f"{reverse('cola')}?{consulta.urlencode()}"


@login_required
def tablero(request):
    usuario = _agente(request)
    datos = selectors.tablero(usuario=usuario)
    dep = datos.departamento_id
    abiertos = list(selectors.ESTADOS_ABIERTOS)
    por_estado = [
        (Ticket.Estado(e).label, n, _a_la_cola(**({"departamento": dep} if dep else {}), estado=e))
        for e, n in datos.cola_por_estado.items()
    ]
    for entrada in datos.actividad:
        entrada.url_ticket = url_ticket(entrada.ticket.numero)
    contexto = {
        "datos": datos,
        "departamento": Departamento.objects.filter(pk=dep).first() if dep else None,
        "por_estado": por_estado,
        "enlaces": {
            "mios": _a_la_cola(asignado="me", estado=abiertos),
            "en_riesgo": _a_la_cola(sla="en_riesgo", estado=abiertos),
            "incumplido": _a_la_cola(sla="incumplido", estado=abiertos),
            "nuevos": _a_la_cola(orden="-creado"),
            "resueltos": _a_la_cola(estado="resuelto", orden="-actualizado"),
        },
    }
    return render(request, "incidencias/tablero.html", contexto)


@login_required
@vary_on_headers("HX-Request")
def cola(request):
    usuario = _agente(request)
    estado = 200
    consulta = _consulta(request.GET)  # a GET form sends its empty fields too
    try:
        filtros = selectors.cola_filtros(consulta)
        pagina = selectors.cola(usuario=usuario, despues=request.GET.get("cursor"), **filtros)
    except BadRequest as exc:
        messages.error(request, str(exc))
        pagina, estado = (
            selectors.PaginaCola(filas=[], siguiente=None, anterior=None, orden=""),
            400,
        )
    agentes = list(agentes_asignables(usuario))
    contexto = {
        "filas": [(t, url_ticket(t.numero)) for t in pagina.filas],
        "siguiente": _pagina(consulta, pagina.siguiente),
        "anterior": _pagina(consulta, pagina.anterior),
        "lote": LoteForm(agentes=agentes),
        "guardados": list(selectors.filtros_guardados(usuario=usuario)),
        "guardar": FiltroGuardarForm(
            initial={"consulta": consulta.urlencode(), "orden": request.GET.get("orden", "sla")}
        ),
        "aqui": request.get_full_path(),
    }
    parcial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    if parcial:
        return render(
            request, "incidencias/parciales/cola_resultados.html", contexto, status=estado
        )
    departamentos = (
        Departamento.objects.filter(activo=True).order_by("nombre")
        if usuario.is_staff
        else Departamento.objects.filter(pk=usuario.departamento_id or 0)
    )
    contexto["filtros"] = FiltrosForm(request.GET, departamentos=departamentos, agentes=agentes)
    return render(request, "incidencias/cola.html", contexto, status=estado)


def _pagina(consulta: QueryDict, cursor: str | None) -> str | None:
    """The address of the queue's page at `cursor`, with the same filters."""
    if cursor is None:
        return None
    enlace = consulta.copy()
    enlace["cursor"] = cursor
    return f"{reverse('cola')}?{enlace.urlencode()}"


@require_POST
@login_required
def cola_lote(request):
    usuario = _agente(request)
    form = LoteForm(request.POST, agentes=agentes_asignables(usuario))
    if not form.is_valid():
        for errores in form.errors.values():
            messages.error(request, " ".join(errores))
        return redirect(_volver(request))
    pedidos = form.cleaned_data["tickets"]
    visibles = selectors.tickets_para_usuario(usuario=usuario).filter(pk__in=pedidos)
    trabajables = [t for t in visibles if selectors.puede_trabajar(usuario, t)]
    try:
        if form.cleaned_data["accion"] == LoteForm.ASIGNAR:
            agente = form.agente_elegido(usuario)
            cambiados = services.tickets_asignar_lote(
                tickets=trabajables, agente=agente, por=usuario
            )
        else:
            estado = form.cleaned_data["estado"]
            cambiados = services.tickets_cambiar_estado_lote(
                tickets=trabajables, estado=estado, por=usuario
            )
    except services.TicketError as exc:
        messages.error(request, str(exc))
        return redirect(_volver(request))
    _avisar_lote(
        request,
        cambiados=len(cambiados),
        iguales=len(trabajables) - len(cambiados),
        omitidos=len(pedidos) - len(trabajables),
    )
    return redirect(_volver(request))


def _avisar_lote(request, *, cambiados: int, iguales: int, omitidos: int) -> None:
    partes = [
        ngettext("%(n)d ticket changed.", "%(n)d tickets changed.", cambiados) % {"n": cambiados}
    ]
    if iguales:
        partes.append(
            ngettext("%(n)d was already so.", "%(n)d were already so.", iguales) % {"n": iguales}
        )
    if omitidos:
        partes.append(
            ngettext(
                "%(n)d skipped: you may not work it.",
                "%(n)d skipped: you may not work them.",
                omitidos,
            )
            % {"n": omitidos}
        )
    nivel = messages.success if cambiados and not omitidos else messages.warning
    nivel(request, " ".join(partes))


@require_POST
@login_required
def filtro_guardar(request):
    usuario = _agente(request)
    form = FiltroGuardarForm(request.POST)
    if form.is_valid():
        try:
            filtro = services.filtro_guardar(
                usuario=usuario,
                nombre=form.cleaned_data["nombre"],
                consulta=form.cleaned_data["consulta"],
                orden=form.cleaned_data["orden"] or FiltroGuardado.Orden.SLA,
            )
        except (ValidationError, BadRequest) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, _("Filter “%(nombre)s” saved.") % {"nombre": filtro.nombre})
    else:
        messages.error(request, _("Give the filter a name of up to 80 characters."))
    return redirect(_volver(request))


@require_POST
@login_required
def filtro_borrar(request, filtro_id: int):
    usuario = _agente(request)
    try:
        services.filtro_borrar(usuario=usuario, filtro_id=filtro_id)
    except FiltroGuardado.DoesNotExist:
        raise Http404 from None
    messages.success(request, _("Saved filter deleted."))
    return redirect(_volver(request))


@login_required
def ticket_nuevo(request):
    usuario = _agente(request)
    departamentos = departamentos_trabajables(usuario)
    if not departamentos:
        raise Http404
    form = TicketNuevoForm(request.POST or None, departamentos=departamentos)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_crear_manual(por=usuario, **form.cleaned_data)
        except services.TicketError as exc:
            for campo, mensaje in exc.campos.items():
                form.add_error(campo if campo in form.fields else None, mensaje)
            if not exc.campos:
                form.add_error(None, str(exc))
        else:
            messages.success(request, _("Ticket #%(numero)s created.") % {"numero": ticket.numero})
            return redirect(url_ticket(ticket.numero))
    return render(request, "incidencias/ticket_nuevo.html", {"form": form})
