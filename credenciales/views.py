"""The vault's staff pages under /credenciales/.

Every page fetches its credential through `_credencial`, which answers 404 for one the user
cannot see (another department or unit) as for one that does not exist. Revealing and copying
need `revelar_credencial` on top, and answer 404 without it too: no hint that a secret is there.
Writes go through `services`; the secret is never in a list, a detail page, a URL or a log.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from sso.bitacora import client_ip

from . import selectors, services
from .forms import CredencialForm, ExportarForm, FiltroForm, InformeForm, RevelarForm
from .models import AccesoCredencial, Credencial

POR_PAGINA = 50


def _credencial(request, pk: int, *, permiso: str | None = None) -> Credencial:
    """The credential if the user sees it (and holds `permiso`, when given); else 404."""
    credencial = selectors.credenciales_visibles(request.user).filter(pk=pk).first()
    if credencial is None or (permiso and not request.user.has_perm(permiso)):
        raise Http404
    return credencial


def _exigir(request, permiso: str) -> None:
    if not request.user.has_perm(permiso):
        raise PermissionDenied


def _errores_del_servicio(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for campo, errores in exc.error_dict.items():
            form.add_error(campo if campo in form.fields else None, errores)
    else:
        form.add_error(None, exc)


def _permisos(usuario) -> dict:
    return {
        accion: usuario.has_perm(f"credenciales.{accion}_credencial")
        for accion in ("add", "change", "delete", "revelar")
    } | {
        "auditar": usuario.has_perm("credenciales.view_accesocredencial"),
        "informe": _informe(usuario),
    }


def _informe(usuario) -> bool:
    """The per-user report is for department heads and staff who read the audit log."""
    return (usuario.jefe or selectors.puede_ver_todas(usuario)) and usuario.has_perm(
        "credenciales.view_accesocredencial"
    )


@login_required
def lista(request):
    _exigir(request, "credenciales.view_credencial")
    filtro = FiltroForm(request.GET or None, usuario=request.user)
    qs = selectors.credenciales_para_usuario(usuario=request.user, **filtro.filtros())
    pagina = Paginator(qs.defer("clave"), POR_PAGINA).get_page(request.GET.get("pagina"))
    consulta = request.GET.copy()
    consulta.pop("pagina", None)
    contexto = {
        "filtro": filtro,
        "pagina": pagina,
        "consulta": consulta.urlencode(),
        "permisos": _permisos(request.user),
    }
    return render(request, "credenciales/lista.html", contexto)


@login_required
def detalle(request, pk: int):
    credencial = _credencial(request, pk)
    contexto = {
        "credencial": credencial,
        "permisos": _permisos(request.user),
        "revelar": RevelarForm(),
        "motivo_obligatorio": settings.CREDENCIALES_MOTIVO_OBLIGATORIO,
    }
    return render(request, "credenciales/detalle.html", contexto)


@sensitive_post_parameters("clave")
@sensitive_variables("form")
@never_cache
@login_required
def nueva(request):
    _exigir(request, "credenciales.add_credencial")
    form = CredencialForm(request.POST or None, usuario=request.user, nueva=True)
    if request.method == "POST" and form.is_valid():
        try:
            credencial = services.credencial_crear(
                **form.campos(),
                clave=form.cleaned_data["clave"],
                por=request.user,
                ip=client_ip(request),
            )
        except ValidationError as exc:
            _errores_del_servicio(form, exc)
        else:
            messages.success(request, _("Credential saved."))
            return redirect("credenciales:detalle", pk=credencial.pk)
    return render(request, "credenciales/formulario.html", {"form": form, "credencial": None})


@sensitive_post_parameters("clave")
@sensitive_variables("form")
@never_cache
@login_required
def editar(request, pk: int):
    credencial = _credencial(request, pk)
    _exigir(request, "credenciales.change_credencial")
    inicial = {campo: getattr(credencial, campo) for campo in ("usuario", "url", "vence", "nota")}
    inicial |= {
        "tipo": credencial.tipo_id,
        "departamento": credencial.departamento_id,
        "unidad": credencial.unidad_id,
    }
    form = CredencialForm(request.POST or None, initial=inicial, usuario=request.user, nueva=False)
    if request.method == "POST" and form.is_valid():
        try:
            services.credencial_editar(
                credencial=credencial,
                **form.campos(),
                clave=form.cleaned_data["clave"] or None,
                por=request.user,
                ip=client_ip(request),
            )
        except ValidationError as exc:
            _errores_del_servicio(form, exc)
        else:
            messages.success(request, _("Credential saved."))
            return redirect("credenciales:detalle", pk=credencial.pk)
    return render(request, "credenciales/formulario.html", {"form": form, "credencial": credencial})


@login_required
def borrar(request, pk: int):
    credencial = _credencial(request, pk)
    _exigir(request, "credenciales.delete_credencial")
    if request.method == "POST":
        services.credencial_borrar(credencial=credencial, por=request.user, ip=client_ip(request))
        messages.success(request, _("Credential deleted."))
        return redirect("credenciales:lista")
    return render(request, "credenciales/borrar.html", {"credencial": credencial})


@sensitive_variables("clave")
@never_cache
@require_POST
@login_required
def revelar(request, pk: int):
    """The htmx fragment with the clear secret, after its audit row is written."""
    credencial = _credencial(request, pk, permiso="credenciales.revelar_credencial")
    form = RevelarForm(request.POST)
    contexto = {"credencial": credencial, "segundos": settings.CREDENCIALES_REVELAR_SEGUNDOS}
    try:
        motivo = form.cleaned_data["motivo"] if form.is_valid() else ""
        contexto["clave"] = services.credencial_revelar(
            credencial=credencial, usuario=request.user, ip=client_ip(request), motivo=motivo
        )
    except services.MotivoRequerido:
        contexto["error"] = _("Give the reason for revealing the secret.")
    except services.ClaveIlegible:
        contexto["error"] = _("The stored secret cannot be read; nothing was revealed.")
    response = render(request, "credenciales/parciales/revelada.html", contexto)
    response["Cache-Control"] = "no-store"
    return response


@login_required
def historial(request, pk: int):
    credencial = _credencial(request, pk)
    cambios = credencial.historial.select_related("cambiado_por").defer("clave")
    contexto = {"credencial": credencial, "cambios": cambios}
    return render(request, "credenciales/historial.html", contexto)


@login_required
def accesos(request, pk: int):
    """The audit log of one credential (who did what, when, from where, why)."""
    credencial = _credencial(request, pk, permiso="credenciales.view_accesocredencial")
    filas = AccesoCredencial.objects.filter(credencial=credencial).select_related("usuario")
    pagina = Paginator(filas, POR_PAGINA).get_page(request.GET.get("pagina"))
    contexto = {
        "credencial": credencial,
        "pagina": pagina,
        "exportar": ExportarForm(initial={"credencial": credencial.pk}, usuario=request.user),
    }
    return render(request, "credenciales/accesos.html", contexto)


@never_cache
@require_POST
@login_required
def copiar(request, pk: int):
    """Records that the secret of a revealed fragment was copied (htmx, after the copy)."""
    credencial = _credencial(request, pk, permiso="credenciales.revelar_credencial")
    services.credencial_registrar_copia(
        credencial=credencial, usuario=request.user, ip=client_ip(request)
    )
    return HttpResponse(status=204)


@login_required
def exportar(request):
    """The audit log as CSV (of one credential, a person, a period); the export is recorded."""
    _exigir(request, "credenciales.view_accesocredencial")
    form = ExportarForm(request.POST if request.method == "POST" else None, usuario=request.user)
    if request.method == "POST" and form.is_valid():
        datos = form.cleaned_data
        credencial = None
        if datos["credencial"] is not None:
            credencial = _credencial(request, datos["credencial"])
        lineas = services.accesos_exportar_csv(
            usuario=request.user,
            credencial=credencial,
            persona=datos["persona"],
            desde=datos["desde"],
            hasta=datos["hasta"],
            ip=client_ip(request),
        )
        respuesta = StreamingHttpResponse(lineas, content_type="text/csv; charset=utf-8")
        respuesta["Content-Disposition"] = 'attachment; filename="accesos.csv"'
        respuesta["Cache-Control"] = "no-store"
        return respuesta
    return render(request, "credenciales/exportar.html", {"form": form})


@login_required
def informe(request):
    """What a person revealed and could reveal: the list to rotate when they leave."""
    if not _informe(request.user):
        raise PermissionDenied
    form = InformeForm(request.GET or None, por=request.user)
    resultado = None
    if form.is_valid():
        resultado = selectors.informe_usuario(
            usuario_objetivo=form.cleaned_data["usuario"], por=request.user
        )
    return render(request, "credenciales/informe.html", {"form": form, "informe": resultado})
