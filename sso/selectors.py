"""Reads of identity data shared by the API, the pages and the admin."""

from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from incidencias.db import cursor_preparado

from .models import Rol, Sistema, Usuario

# Columns of `usuario_interno_rows`, in SELECT order.
USUARIO_INTERNO_COLUMNS = (
    "id", "username", "nombre", "cedula", "tipo_usuario", "is_active", "email", "ext",
    "acceso_ticket", "departamento_id", "rol_id", "rol_nombre", "jefe", "movil", "last_login",
    "ultima_ip", "dominios", "id_synology",
)  # fmt: skip


def _usuario_interno_sql(where: str) -> str:
    q = connection.ops.quote_name
    through = Usuario.accesos_sistemas.through._meta.db_table
    if connection.vendor == "postgresql":
        dominios = "STRING_AGG(s.dominio, ',' ORDER BY s.dominio)"
    else:  # SQLite, MariaDB: sorted by the caller
        dominios = "GROUP_CONCAT(s.dominio, ',')"
    return f"""
        SELECT u.id, u.username, u.nombre, u.cedula, u.tipo_usuario, u.is_active, u.email,
               u.ext, u.acceso_ticket, u.departamento_id, u.rol_id, r.nombre, u.jefe, u.movil,
               u.last_login, u.ultima_ip,
               (SELECT {dominios} FROM {q(through)} a
                  JOIN {q(Sistema._meta.db_table)} s ON s.id = a.sistema_id
                 WHERE a.usuario_id = u.id),
               u.id_synology
          FROM {q(Usuario._meta.db_table)} u
          LEFT JOIN {q(Rol._meta.db_table)} r ON r.id = u.rol_id
         WHERE {where}
         ORDER BY u.username
    """  # noqa: S608 - only fixed identifiers are interpolated; values are parameters


def _aware(value):
    if isinstance(value, str):  # SQLite without declared-type converters
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def usuario_interno_rows(
    *, login: str | None = None, email: str | None = None, departamento_id: int | None = None
) -> list[dict]:
    """Internal users matching every filter given: one SELECT with role and system domains.

    Written in SQL because it runs on every UsuarioInterno/get call, where building and
    compiling the equivalent ORM query cost more than running it (see bench/api.py).
    Each row is a dict keyed by USUARIO_INTERNO_COLUMNS; `dominios` is sorted and comma-joined.
    """
    where, params = ["1 = 1"], []
    if login:
        where.append("u.username = %s")
        params.append(login)
    if email:
        where.append("UPPER(u.email) = UPPER(%s)")
        params.append(email)
    if departamento_id is not None:
        where.append("u.departamento_id = %s")
        params.append(departamento_id)
    with cursor_preparado() as cursor:
        cursor.execute(_usuario_interno_sql(" AND ".join(where)), params)
        rows = [dict(zip(USUARIO_INTERNO_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["last_login"] = _aware(row["last_login"])
        row["ultima_ip"] = str(row["ultima_ip"]) if row["ultima_ip"] is not None else None
        row["dominios"] = ",".join(sorted(filter(None, (row["dominios"] or "").split(","))))
    return rows
