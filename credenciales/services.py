"""Services of the credential vault. Every change of a secret keeps the earlier one
(`HistorialClave`) and every action writes its audit row (`AccesoCredencial`) in the same
transaction: if the row cannot be written, nothing changes and nothing is revealed."""

from django.conf import settings
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from sso.models import Departamento, Unidad

from .models import AccesoCredencial, Credencial, HistorialClave, TipoCredencial


class TipoEnUso(Exception):
    def __init__(self, cuantas: int):
        super().__init__(f"type used by {cuantas} credentials")
        self.cuantas = cuantas


class MotivoRequerido(Exception):
    pass


def _describir(credencial: Credencial) -> str:
    return (
        f"{credencial.pk} {credencial.departamento_id}/{credencial.unidad_id} {credencial.usuario}"[
            :400
        ]
    )


def acceso_registrar(*, credencial, usuario, accion: str, ip=None, motivo: str = ""):
    return AccesoCredencial.objects.create(
        credencial=credencial,
        credencial_descripcion=_describir(credencial),
        usuario=usuario,
        accion=accion,
        ip=ip,
        motivo=motivo[:500],
    )


@sensitive_variables("clave")
@transaction.atomic
def credencial_crear(
    *,
    tipo: TipoCredencial,
    departamento: Departamento,
    unidad: Unidad | None,
    usuario: str,
    clave: str,
    nota: str = "",
    url: str = "",
    vence=None,
    por=None,
    ip=None,
) -> Credencial:
    credencial = Credencial(
        tipo=tipo,
        departamento=departamento,
        unidad=unidad,
        usuario=usuario,
        clave=clave,
        nota=nota,
        url=url,
        vence=vence,
        creado_por=por,
        actualizado_por=por,
    )
    credencial.full_clean()
    credencial.save()
    acceso_registrar(
        credencial=credencial, usuario=por, accion=AccesoCredencial.Accion.CREAR, ip=ip
    )
    return credencial


_EDITABLES = ("tipo", "departamento", "unidad", "usuario", "nota", "url", "vence")


@sensitive_variables("clave", "anterior")
@transaction.atomic
def credencial_editar(
    *, credencial: Credencial, por=None, ip=None, clave: str | None = None, **cambios
) -> Credencial:
    """Change the given fields; a new `clave` keeps the earlier one in the history."""
    desconocidos = set(cambios) - set(_EDITABLES)
    if desconocidos:
        raise TypeError(f"not editable: {sorted(desconocidos)}")
    credencial = Credencial.objects.select_for_update().get(pk=credencial.pk)
    for campo, valor in cambios.items():
        setattr(credencial, campo, valor)
    if clave is not None:
        anterior = credencial.clave
        if str(anterior) != clave:
            HistorialClave.objects.create(credencial=credencial, clave=anterior, cambiado_por=por)
            credencial.clave = clave
    credencial.actualizado_por = por
    credencial.full_clean()
    credencial.save()
    acceso_registrar(
        credencial=credencial, usuario=por, accion=AccesoCredencial.Accion.EDITAR, ip=ip
    )
    return credencial


@transaction.atomic
def credencial_borrar(*, credencial: Credencial, por=None, ip=None) -> None:
    acceso_registrar(
        credencial=credencial, usuario=por, accion=AccesoCredencial.Accion.BORRAR, ip=ip
    )
    credencial.delete()


@sensitive_variables("clave")
def credencial_revelar(*, credencial: Credencial, usuario, ip=None, motivo: str = "") -> str:
    """The clear secret, read in the transaction that writes its audit row."""
    motivo = (motivo or "").strip()
    if getattr(settings, "CREDENCIALES_MOTIVO_OBLIGATORIO", False) and not motivo:
        raise MotivoRequerido()
    with transaction.atomic():
        acceso_registrar(
            credencial=credencial,
            usuario=usuario,
            accion=AccesoCredencial.Accion.REVELAR,
            ip=ip,
            motivo=motivo,
        )
        clave = Credencial.objects.values_list("clave", flat=True).get(pk=credencial.pk)
    return str(clave)


def tipo_crear(*, nombre: str) -> TipoCredencial:
    tipo = TipoCredencial(nombre=nombre.strip())
    tipo.full_clean()
    tipo.save()
    return tipo


def tipo_editar(*, tipo: TipoCredencial, nombre: str) -> TipoCredencial:
    tipo.nombre = nombre.strip()
    tipo.full_clean()
    tipo.save(update_fields=["nombre"])
    return tipo


@transaction.atomic
def tipo_borrar(*, tipo: TipoCredencial) -> None:
    """Delete a type no credential uses; otherwise `TipoEnUso` with the count."""
    tipo = TipoCredencial.objects.select_for_update().get(pk=tipo.pk)
    cuantas = Credencial.objects.filter(tipo=tipo).count()
    if cuantas:
        raise TipoEnUso(cuantas)
    tipo.delete()
