"""Services of the credential vault. Every change of a secret keeps the earlier one
(`HistorialClave`) and every action writes its audit row (`AccesoCredencial`) in the same
transaction: if the row cannot be written, nothing changes and nothing is revealed.

A stored secret that does not decrypt (tampered with, or under a key no longer configured) is
never answered: `credencial_revelar` logs it (without any value) and raises `ClaveIlegible`."""

import csv
import io
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import date, datetime, time

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from sso.crypto import DecryptionError
from sso.models import Departamento, Unidad

from . import selectors
from .models import AccesoCredencial, Credencial, HistorialClave, TipoCredencial

logger = logging.getLogger("credenciales")


class TipoEnUso(Exception):
    def __init__(self, cuantas: int):
        super().__init__(f"type used by {cuantas} credentials")
        self.cuantas = cuantas


class MotivoRequerido(Exception):
    pass


class ClaveIlegible(Exception):
    """The stored secret does not decrypt: tampered with, bound elsewhere or an unknown key."""

    def __init__(self, credencial_id: int):
        super().__init__(f"the stored secret of credential {credencial_id} does not decrypt")
        self.credencial_id = credencial_id


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
    """The clear secret, read in the transaction that writes its audit row. The caller has
    checked that the user may reveal it (`credencial_revelar_visible` checks it itself)."""
    return _revelar(pk=credencial.pk, alcance=None, usuario=usuario, ip=ip, motivo=motivo)


@sensitive_variables("clave")
def credencial_revelar_visible(
    *, pk: int, usuario, ip=None, motivo: str = "", en_transaccion: bool = False
) -> str:
    """The clear secret of credential `pk` if `usuario` sees it (`selectors`' rule), read in
    the transaction that writes its audit row; otherwise `Credencial.DoesNotExist`, as for one
    that does not exist. The reveal permission is the caller's to check.

    On PostgreSQL the visibility check, the audit row and the read are one statement.
    `en_transaccion`: the caller holds a transaction that commits the row (the API's, with its
    bitácora row) and gives the answer only after that commit; no savepoint of its own then."""
    if connection.vendor != "postgresql":
        credencial = selectors.credencial_para_revelar(usuario, pk)
        if credencial is None:
            raise Credencial.DoesNotExist
        return credencial_revelar(credencial=credencial, usuario=usuario, ip=ip, motivo=motivo)
    alcance = selectors.alcance(usuario)
    if alcance is False:
        raise Credencial.DoesNotExist
    return _revelar(
        pk=pk,
        alcance=alcance,
        usuario=usuario,
        ip=ip,
        motivo=motivo,
        en_transaccion=en_transaccion and connection.in_atomic_block,
    )


@sensitive_variables("clave")
def _revelar(*, pk: int, alcance, usuario, ip, motivo, en_transaccion: bool = False) -> str:
    motivo = (motivo or "").strip()
    if getattr(settings, "CREDENCIALES_MOTIVO_OBLIGATORIO", False) and not motivo:
        raise MotivoRequerido()
    # Decrypted before commit: a row if and only if revealed. In the caller's transaction the
    # one statement needs no savepoint: it fails whole (and the caller's transaction with it),
    # and a value that does not decrypt deletes its row.
    sin_savepoint = en_transaccion and connection.vendor == "postgresql"
    try:
        with nullcontext() if sin_savepoint else transaction.atomic():
            if connection.vendor == "postgresql":
                clave = _revelar_en_una_sentencia(
                    pk=pk, alcance=alcance, usuario=usuario, ip=ip, motivo=motivo
                )
            else:
                credencial = Credencial.objects.only(
                    "id", "departamento_id", "unidad_id", "usuario"
                ).get(pk=pk)
                acceso_registrar(
                    credencial=credencial,
                    usuario=usuario,
                    accion=AccesoCredencial.Accion.REVELAR,
                    ip=ip,
                    motivo=motivo,
                )
                clave = Credencial.objects.values_list("clave", flat=True).get(pk=pk)
    except DecryptionError as exc:
        # Fail closed: the audit row is rolled back with the read, nothing is answered, and
        # the log says which row (never a value: the error names at most a key id).
        logger.error(
            "Credential %s: the stored secret does not decrypt (%s); nothing revealed to user %s",
            pk,
            exc,
            getattr(usuario, "pk", None),
        )
        raise ClaveIlegible(pk) from None
    return str(clave)


# The audit row and the read of the stored value in one statement (one round trip): the row is
# written only if the credential is there (and, with a scope, visible to the user), and the
# value is returned only with the row. The caller decrypts it before its transaction commits,
# so a value that does not decrypt leaves no row saying it was revealed. The description is
# `_describir`'s, built in SQL.
_REVELAR_SQL = """
WITH c AS (SELECT {id}, {departamento}, {unidad}, {usuario}, {clave}
             FROM {credenciales}
            WHERE {id} = %(pk)s {alcance}),
     a AS (INSERT INTO {accesos} ({a_usuario}, {a_credencial}, {a_descripcion}, {a_accion},
                                  {a_momento}, {a_ip}, {a_motivo})
           SELECT %(usuario)s, c.{id},
                  LEFT(c.{id} || ' ' || c.{departamento} || '/'
                       || COALESCE(c.{unidad}::text, 'None') || ' ' || c.{usuario}, 400),
                  %(accion)s, %(momento)s, %(ip)s, %(motivo)s
             FROM c
           RETURNING {a_id}, {a_credencial})
SELECT c.{clave}, a.{a_id} FROM c JOIN a ON a.{a_credencial} = c.{id}
"""

# The user's department; every unit for its head, else those of no unit and the user's own.
_ALCANCE_SQL = """
              AND {departamento} = %(departamento)s
              AND (%(jefe)s OR {unidad} IS NULL
                   OR {unidad} IN (SELECT m.{m_unidad} FROM {miembros} m
                                    WHERE m.{m_usuario} = %(usuario)s))"""


def _revelar_en_una_sentencia(*, pk, alcance, usuario, ip, motivo) -> str:
    from incidencias.db import cursor_preparado, sentencia

    from .models import MiembroUnidad

    campo = Credencial._meta.get_field("clave")
    c = Credencial._meta.get_field
    a = AccesoCredencial._meta.get_field
    m = MiembroUnidad._meta.get_field

    def nombres(q):
        return {
            "credenciales": q(Credencial._meta.db_table),
            "id": q(Credencial._meta.pk.column),
            "departamento": q(c("departamento").column),
            "unidad": q(c("unidad").column),
            "usuario": q(c("usuario").column),
            "clave": q(campo.column),
            "accesos": q(AccesoCredencial._meta.db_table),
            "a_id": q(AccesoCredencial._meta.pk.column),
            "a_usuario": q(a("usuario").column),
            "a_credencial": q(a("credencial").column),
            "a_descripcion": q(a("credencial_descripcion").column),
            "a_accion": q(a("accion").column),
            "a_momento": q(a("momento").column),
            "a_ip": q(a("ip").column),
            "a_motivo": q(a("motivo").column),
            "miembros": q(MiembroUnidad._meta.db_table),
            "m_unidad": q(m("unidad").column),
            "m_usuario": q(m("usuario").column),
        }

    if alcance is None:  # every credential (checked by the caller, or staff who see all)
        sql = sentencia(connection, _REVELAR_SQL.replace("{alcance}", ""), nombres)
    else:
        plantilla = _REVELAR_SQL.replace("{alcance}", _ALCANCE_SQL)
        sql = sentencia(connection, plantilla, nombres)
    usuario_id = getattr(usuario, "pk", None)
    params = {
        "pk": pk,
        "usuario": usuario_id,
        "accion": AccesoCredencial.Accion.REVELAR.value,
        "momento": timezone.now(),
        "ip": ip,
        "motivo": motivo[:500],
    }
    if alcance is not None:
        params["departamento"], params["jefe"] = alcance
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:  # not there (or not visible): nothing written, nothing revealed
        raise Credencial.DoesNotExist
    try:
        return campo.from_db_value(row[0], None, connection)
    except DecryptionError:
        # Nothing is revealed, so the row saying it was goes, in the same transaction.
        AccesoCredencial.objects.filter(pk=row[1]).delete()
        raise


def credencial_registrar_copia(*, credencial: Credencial, usuario, ip=None) -> AccesoCredencial:
    """Record that the user copied the secret (the page's copy button) to the clipboard."""
    return acceso_registrar(
        credencial=credencial, usuario=usuario, accion=AccesoCredencial.Accion.COPIAR, ip=ip
    )


# --- The audit log as CSV -------------------------------------------------------------------

COLUMNAS_CSV = ("momento", "usuario", "accion", "credencial_id", "credencial", "ip", "motivo")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def celda_segura(valor) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    texto = "" if valor is None else str(valor)
    return "'" + texto if texto.startswith(_FORMULA) else texto


def _momento(valor, *, fin: bool):
    """A date as the start (or the end) of that day in the site's time zone; datetimes as is."""
    if valor is None or isinstance(valor, datetime):
        return valor
    if isinstance(valor, date):
        return timezone.make_aware(datetime.combine(valor, time.max if fin else time.min))
    raise TypeError("desde/hasta: a date or a datetime")


def accesos_exportar_csv(
    *,
    usuario,
    credencial: Credencial | None = None,
    persona=None,
    desde=None,
    hasta=None,
    ip=None,
) -> Iterator[str]:
    """The audit log (of one credential, or of every one the user sees) as CSV lines, oldest
    first, streamed from the database. Writes the `exportar` audit row at once, before a line
    is produced. Needs `view_accesocredencial`; a credential the user cannot see raises
    `Credencial.DoesNotExist`, as one that does not exist. Never a secret: the rows hold none.

    `persona` keeps only that user's rows; `desde`/`hasta` (dates or datetimes) are inclusive,
    a date covers the whole day."""
    if not usuario.is_authenticated or not usuario.has_perm("credenciales.view_accesocredencial"):
        raise PermissionDenied
    visibles = selectors.credenciales_visibles(usuario)
    if credencial is not None and not visibles.filter(pk=credencial.pk).exists():
        raise Credencial.DoesNotExist
    inicio, fin = _momento(desde, fin=False), _momento(hasta, fin=True)
    filas = selectors.accesos_visibles(usuario)
    if credencial is not None:
        filas = filas.filter(credencial_id=credencial.pk)
    if persona is not None:
        filas = filas.filter(usuario_id=persona.pk)
    if inicio is not None:
        filas = filas.filter(momento__gte=inicio)
    if fin is not None:
        filas = filas.filter(momento__lte=fin)
    alcance = f"{credencial.pk}" if credencial is not None else "*"
    periodo = f"{inicio.isoformat() if inicio else ''}..{fin.isoformat() if fin else ''}"
    if persona is not None:
        periodo += f" {persona.get_username()}"
    with transaction.atomic():
        if credencial is not None:
            acceso_registrar(
                credencial=credencial,
                usuario=usuario,
                accion=AccesoCredencial.Accion.EXPORTAR,
                ip=ip,
                motivo=f"CSV {periodo}",
            )
        else:
            AccesoCredencial.objects.create(
                credencial=None,
                credencial_descripcion=f"{alcance} (CSV)",
                usuario=usuario,
                accion=AccesoCredencial.Accion.EXPORTAR,
                ip=ip,
                motivo=f"CSV {periodo}"[:500],
            )
    columnas = (
        "momento",
        "usuario__username",
        "accion",
        "credencial_id",
        "credencial_descripcion",
        "ip",
        "motivo",
    )
    consulta = filas.order_by("momento", "pk").values_list(*columnas)
    return _csv_lineas(consulta)


def _csv_lineas(consulta) -> Iterator[str]:
    buffer = io.StringIO()
    escritor = csv.writer(buffer)

    def linea(valores) -> str:
        buffer.seek(0)
        buffer.truncate()
        escritor.writerow([celda_segura(v) for v in valores])
        return buffer.getvalue()

    yield linea(COLUMNAS_CSV)
    for momento, *resto in consulta.iterator(chunk_size=500):
        yield linea([timezone.localtime(momento).isoformat(timespec="seconds"), *resto])


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
