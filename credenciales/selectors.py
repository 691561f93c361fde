"""Which credentials a user may see (see `credenciales.models` for the rule)."""

from django.db.models import Q, QuerySet

from .models import Credencial, MiembroUnidad


def puede_ver_todas(usuario) -> bool:
    return bool(usuario.is_staff and usuario.has_perm("credenciales.ver_todas_credenciales"))


def credenciales_visibles(usuario) -> QuerySet[Credencial]:
    """Every credential the user may see, before any filter; none without `view_credencial`."""
    qs = Credencial.objects.select_related("tipo", "departamento", "unidad")
    if not usuario.is_authenticated or not usuario.has_perm("credenciales.view_credencial"):
        return qs.none()
    if puede_ver_todas(usuario):
        return qs
    if usuario.departamento_id is None:
        return qs.none()
    qs = qs.filter(departamento_id=usuario.departamento_id)
    if usuario.jefe:
        return qs
    unidades = MiembroUnidad.objects.filter(usuario=usuario).values("unidad_id")
    return qs.filter(Q(unidad__isnull=True) | Q(unidad_id__in=unidades))


def credenciales_para_usuario(
    *,
    usuario,
    tipo_id: int | None = None,
    departamento_id: int | None = None,
    unidad_id: int | None = None,
    texto: str = "",
) -> QuerySet[Credencial]:
    """The user's visible credentials, filtered; `texto` searches the account and the note,
    never a secret."""
    qs = credenciales_visibles(usuario)
    if tipo_id is not None:
        qs = qs.filter(tipo_id=tipo_id)
    if departamento_id is not None:
        qs = qs.filter(departamento_id=departamento_id)
    if unidad_id is not None:
        qs = qs.filter(unidad_id=unidad_id)
    if texto:
        qs = qs.filter(Q(usuario__icontains=texto) | Q(nota__icontains=texto))
    return qs
