"""Which credentials a user may see (see `credenciales.models` for the rule), their audit
rows, and the per-user report.

Lists never load the secret: `clave` is deferred, so a list costs no decryption and a row whose
stored value was tampered with still lists (its reveal fails closed)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, QuerySet

from .models import AccesoCredencial, Credencial, MiembroUnidad


def puede_ver_todas(usuario) -> bool:
    return bool(usuario.is_staff and usuario.has_perm("credenciales.ver_todas_credenciales"))


# The user's permissions, their own and their groups', in one statement (ModelBackend reads
# them in two): the vault's API checks two permissions on every call.
_PERMISOS_SQL = """
SELECT ct.app_label, p.codename
  FROM {permisos} p JOIN {tipos} ct ON ct.id = p.content_type_id
 WHERE p.id IN (SELECT up.permission_id FROM {usuario_permisos} up WHERE up.{usuario} = %s
                UNION
                SELECT gp.permission_id
                  FROM {grupo_permisos} gp JOIN {usuario_grupos} ug ON ug.group_id = gp.group_id
                 WHERE ug.{usuario_g} = %s)
"""


def permisos_cargar(usuario) -> None:
    """Fill the user's permission cache as `ModelBackend` would (the project's backend,
    `sso.permisos.PermisosEnCache`, is one and reads that cache first), in one statement, so
    `has_perm` asks the database nothing more for this user object. Nothing to do for
    anonymous, inactive (no permission) or superusers (every permission)."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from incidencias.db import cursor_preparado, sentencia

    if (
        not usuario.is_authenticated
        or not usuario.is_active
        or usuario.is_superuser
        or hasattr(usuario, "_perm_cache")
    ):
        return
    modelo = type(usuario)
    propios = modelo._meta.get_field("user_permissions").remote_field.through
    grupos = modelo._meta.get_field("groups").remote_field.through
    sql = sentencia(
        connection,
        _PERMISOS_SQL,
        lambda q: {
            "permisos": q(Permission._meta.db_table),
            "tipos": q(ContentType._meta.db_table),
            "usuario_permisos": q(propios._meta.db_table),
            "usuario": q(propios._meta.get_field(modelo._meta.model_name).column),
            "grupo_permisos": q(Group.permissions.through._meta.db_table),
            "usuario_grupos": q(grupos._meta.db_table),
            "usuario_g": q(grupos._meta.get_field(modelo._meta.model_name).column),
        },
    )
    with cursor_preparado() as cursor:
        cursor.execute(sql, [usuario.pk, usuario.pk])
        usuario._perm_cache = {f"{app}.{codename}" for app, codename in cursor.fetchall()}


def _visibles(usuario, qs: QuerySet[Credencial]) -> QuerySet[Credencial]:
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


def alcance(usuario) -> bool | tuple[int, bool] | None:
    """`_visibles`' rule as data for hand-written SQL: None (every credential), False (none),
    or (department id, whether head) for the department's, by unit membership unless head."""
    if not usuario.is_authenticated or not usuario.has_perm("credenciales.view_credencial"):
        return False
    if puede_ver_todas(usuario):
        return None
    if usuario.departamento_id is None:
        return False
    return usuario.departamento_id, bool(usuario.jefe)


def credencial_para_revelar(usuario, pk: int) -> Credencial | None:
    """The credential `pk` if the user sees it, with only what its audit row names (id,
    department, unit, account): one lean query on the reveal's hot path."""
    qs = Credencial.objects.only("id", "departamento_id", "unidad_id", "usuario")
    return _visibles(usuario, qs).filter(pk=pk).order_by("pk").first()


def credenciales_visibles(usuario) -> QuerySet[Credencial]:
    """Every credential the user may see, before any filter; none without `view_credencial`."""
    qs = Credencial.objects.select_related("tipo", "departamento", "unidad").defer("clave")
    return _visibles(usuario, qs)


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


def credenciales_despues_de(qs: QuerySet[Credencial], pk: int) -> QuerySet[Credencial]:
    """Keyset pagination in the list's order (department name, account, id): the rows of `qs`
    after credential `pk`, which must be in `qs` (else `Credencial.DoesNotExist`). One query
    for the key, whatever the depth: no OFFSET."""
    nombre, usuario = qs.values_list("departamento__nombre", "usuario").get(pk=pk)
    return qs.filter(
        Q(departamento__nombre__gt=nombre)
        | Q(departamento__nombre=nombre, usuario__gt=usuario)
        | Q(departamento__nombre=nombre, usuario=usuario, pk__gt=pk)
    )


def accesos_visibles(usuario) -> QuerySet[AccesoCredencial]:
    """The audit rows of the credentials the user sees; those of deleted credentials only to
    staff who see every department's. Nothing without `view_accesocredencial`."""
    qs = AccesoCredencial.objects.all()
    if not usuario.is_authenticated or not usuario.has_perm("credenciales.view_accesocredencial"):
        return qs.none()
    if puede_ver_todas(usuario) and usuario.has_perm("credenciales.view_credencial"):
        return qs
    return qs.filter(credencial_id__in=credenciales_visibles(usuario).values("pk"))


@dataclass
class Revelada:
    credencial: Credencial
    veces: int
    ultima: datetime


@dataclass
class Informe:
    """What a person revealed (or copied) and what they could reveal today, within what the
    reader sees: `rotar` is the list to rotate when that person leaves."""

    usuario: object
    reveladas: list[Revelada] = field(default_factory=list)
    puede_revelar: list[Credencial] = field(default_factory=list)

    @property
    def rotar(self) -> list[Credencial]:
        vistas = {c.pk: c for c in self.puede_revelar}
        for r in self.reveladas:
            vistas.setdefault(r.credencial.pk, r.credencial)
        return sorted(vistas.values(), key=lambda c: (c.departamento.nombre, c.usuario, c.pk))


def informe_usuario(*, usuario_objetivo, por) -> Informe:
    """The per-user report, scoped to the credentials `por` sees; `por` needs
    `view_accesocredencial` (else PermissionDenied). A constant number of queries.

    Revealed: reveals and copies by that person of credentials that still exist, with how many
    and the last time. Could reveal: the credentials that person sees today with the reveal
    permission (none when inactive or without it)."""
    if not por.is_authenticated or not por.has_perm("credenciales.view_accesocredencial"):
        raise PermissionDenied
    alcance = credenciales_visibles(por)
    acciones = [AccesoCredencial.Accion.REVELAR, AccesoCredencial.Accion.COPIAR]
    resumen = list(
        AccesoCredencial.objects.filter(
            usuario=usuario_objetivo,
            accion__in=acciones,
            credencial_id__in=alcance.values("pk"),
        )
        .values("credencial_id")
        .annotate(veces=Count("id"), ultima=Max("momento"))
        .order_by("-ultima")
    )
    credenciales = alcance.in_bulk([r["credencial_id"] for r in resumen]) if resumen else {}
    reveladas = [
        Revelada(credencial=credenciales[r["credencial_id"]], veces=r["veces"], ultima=r["ultima"])
        for r in resumen
        if r["credencial_id"] in credenciales
    ]
    puede = []
    if usuario_objetivo.is_active and usuario_objetivo.has_perm("credenciales.revelar_credencial"):
        suyas = credenciales_visibles(usuario_objetivo).values("pk")
        puede = list(alcance.filter(pk__in=suyas))
    return Informe(usuario=usuario_objetivo, reveladas=reveladas, puede_revelar=puede)
