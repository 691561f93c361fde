"""Stand-ins for the portal's queue and ticket pages, for bench/pages.py until the real pages
exist: the same selectors, rows rendered through a plain Django template. Not the portal."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from incidencias.selectors import cola, cola_filtros, hilo, tickets_para_usuario


@login_required
def cola_vista(request):
    pagina = cola(
        usuario=request.user, **cola_filtros(request.GET), despues=request.GET.get("despues")
    )
    return render(request, "bench/cola.html", {"pagina": pagina})


@login_required
def ticket_vista(request, numero: int):
    ticket = get_object_or_404(
        tickets_para_usuario(usuario=request.user)
        .select_related("departamento", "asignado")
        .defer("busqueda"),
        numero=numero,
    )
    return render(request, "bench/ticket.html", {"ticket": ticket, "entradas": hilo(ticket=ticket)})
