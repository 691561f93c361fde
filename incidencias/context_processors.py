"""The staff pages' navigation: one list, each entry shown when its page exists and the user
may open it."""

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (URL name, label, permission needed or None; "staff" for Django admin)
PRINCIPAL = (
    ("tablero", _("Dashboard"), None),
    ("cola", _("Queue"), None),
    ("ticket-nuevo", _("New ticket"), None),
    ("credenciales:lista", _("Vault"), "credenciales.view_credencial"),
    ("admin:index", _("Admin"), "staff"),
)
CUENTA = (
    ("cuenta-clave", _("Change password"), None),
    ("dosfa-enrolar", _("Two-factor authentication"), None),
)


def _url(nombre: str) -> str | None:
    try:
        return reverse(nombre)
    except NoReverseMatch:
        return None


def _permitida(usuario, permiso: str | None) -> bool:
    if permiso is None:
        return True
    if permiso == "staff":
        return usuario.is_staff
    return usuario.has_perm(permiso)


def _entradas(request, definicion) -> list[dict]:
    entradas = []
    for nombre, etiqueta, permiso in definicion:
        url = _url(nombre)
        if url is None or not _permitida(request.user, permiso):
            continue
        actual = request.path == url if url == "/" else request.path.startswith(url)
        entradas.append({"url": url, "nombre": etiqueta, "actual": actual})
    return entradas


def navegacion(request) -> dict:
    usuario = getattr(request, "user", None)
    if usuario is None or not usuario.is_authenticated:
        return {}
    return {
        "navegacion": _entradas(request, PRINCIPAL),
        "navegacion_cuenta": _entradas(request, CUENTA),
        "salir_url": _url("cuenta-salir"),
    }
