"""The audit log (bitácora): one row per API call, with nothing secret in it."""

import ipaddress
import json
import logging
import math
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from incidencias.db import cursor_preparado

from .models import Bitacora

logger = logging.getLogger("incidencias.bitacora")

REDACTED = "********"
_SENSITIVE = (
    "password", "passwd", "pass", "pwd", "contrasena", "contraseña", "secret", "secreto", "token",
    "clave", "llave", "key", "pin", "authorization", "cookie", "code", "codigo", "código", "otp",
)  # fmt: skip
_MAX_STRING = 300
_MAX_ITEMS = 50
_MAX_DEPTH = 4
_MAX_SUMMARY = 4000  # characters of JSON per row


def _clean(text: str) -> str:
    """Text any database stores: no NUL, no lone surrogates."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _is_sensitive(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in _SENSITIVE)


def redact(value, depth: int = 0):
    """A copy of request data safe to store: secrets masked, big values cut short."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        out = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= _MAX_ITEMS:
                out["…"] = f"{len(value) - _MAX_ITEMS} more"
                break
            key = _clean(str(key)[:100])
            if _is_sensitive(key):
                out[key] = REDACTED
            elif key == "content" and isinstance(item, str):
                out[key] = f"<{len(item)} chars>"
            else:
                out[key] = redact(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        items = [redact(item, depth + 1) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            items.append(f"… {len(value) - _MAX_ITEMS} more")
        return items
    if isinstance(value, str):
        value = _clean(value)
        return value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value), depth + 1)


@lru_cache(maxsize=8)
def _trusted_networks(spec: tuple[str, ...]):
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _is_trusted(address: str) -> bool:
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request) -> str | None:
    """REMOTE_ADDR, unless it is a trusted proxy: then the nearest untrusted X-Forwarded-For."""
    remote = request.META.get("REMOTE_ADDR") or None
    if remote and _is_trusted(remote):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            if not _is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return remote
    return remote


def parent_id(*sources) -> int | None:
    """The request's own `id_bitacora_log`, if it sent a usable one."""
    for source in sources:
        try:
            value = source.get("id_bitacora_log") if hasattr(source, "get") else None
        except Exception:
            value = None
        if value in (None, ""):
            continue
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            continue
        if 0 < number < 2**63:
            return number
    return None


_COLUMNS = (
    "creado", "endpoint", "metodo", "estado", "ip", "duracion_ms", "consumidor", "usuario",
    "id_padre", "resumen",
)  # fmt: skip


def _insert(values: dict) -> int:
    """One INSERT … RETURNING id: the audit row is written on every API call, and this costs a
    fraction of Model.save(). Each value goes through its field's own database preparation."""
    fields = [Bitacora._meta.get_field(name) for name in _COLUMNS]
    q = connection.ops.quote_name
    returning = connection.features.can_return_columns_from_insert
    sql = "INSERT INTO {} ({}) VALUES ({}){}".format(  # noqa: S608 - fixed identifiers only
        q(Bitacora._meta.db_table),
        ", ".join(q(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
        f" RETURNING {q(Bitacora._meta.pk.column)}" if returning else "",
    )
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with cursor_preparado() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] if returning else cursor.lastrowid


def bitacora_registrar(
    *,
    endpoint: str,
    metodo: str,
    estado: int,
    ip: str | None,
    duracion_ms: float,
    consumidor_id: int | None = None,
    usuario_id: int | None = None,
    id_padre: int | None = None,
    resumen: dict | None = None,
    estricto: bool = False,
) -> int | None:
    """Append one audit row and return its id (None if it could not be written).

    Inside a transaction the row is written in a savepoint, so a failure never breaks it.
    `estricto`: the caller's work stands only with its row — no savepoint, and a failure
    raises (inside the caller's transaction, which then rolls back).
    """
    resumen = resumen or {}
    texto = json.dumps(resumen, ensure_ascii=False)
    if len(texto) > _MAX_SUMMARY:
        resumen = {"truncado": texto[:_MAX_SUMMARY]}
    values = {
        "creado": timezone.now(),
        "endpoint": _clean(endpoint)[:255],
        "metodo": metodo[:10],
        "estado": estado,
        "ip": ip,
        "duracion_ms": round(duracion_ms, 3),
        "consumidor": consumidor_id,
        "usuario": usuario_id,
        "id_padre": id_padre,
        "resumen": resumen,
    }
    if estricto:
        return _insert(values)
    try:
        if not connection.in_atomic_block:
            return _insert(values)  # autocommit: the statement is its own transaction
        with transaction.atomic():  # a savepoint: a failure leaves the caller's work intact
            return _insert(values)
    except Exception:
        logger.exception("Could not write the audit row for %s %s", metodo, endpoint)
        return None


def bitacora_de_solicitud(
    request,
    *,
    estado: int,
    inicio: float,
    consumidor_id: int | None = None,
    consumidor_intentado: str = "",
    usuario_id: int | None = None,
    body: dict | None = None,
    estricto: bool = False,
) -> int | None:
    """The audit row of one API request, from what every family knows about it."""
    query = request.GET
    resumen = {}
    if body:
        resumen["body"] = redact(body)
    if query:
        resumen["query"] = redact(query.dict())
    if consumidor_id is None and consumidor_intentado:
        resumen["consumidor"] = _clean(consumidor_intentado[:80])
    return bitacora_registrar(
        endpoint=request.path,
        metodo=request.method or "",
        estado=estado,
        ip=client_ip(request),
        duracion_ms=(time.perf_counter() - inicio) * 1000,
        consumidor_id=consumidor_id,
        usuario_id=usuario_id,
        id_padre=parent_id(body or {}, query),
        resumen=resumen,
        estricto=estricto,
    )


def bitacora_podar(*, dias: int | None = None) -> int:
    """Delete audit rows older than `dias` days (BITACORA_RETENTION_DAYS by default)."""
    dias = settings.BITACORA_RETENTION_DAYS if dias is None else dias
    if dias < 1:
        raise ValueError("The audit log keeps at least one day.")
    limite = timezone.now() - timedelta(days=dias)
    total = 0
    while True:  # in batches, so a large backlog never holds one long lock
        ids = list(Bitacora.objects.filter(creado__lt=limite).values_list("pk", flat=True)[:5000])
        if not ids:
            return total
        deleted, _ = Bitacora.objects.filter(pk__in=ids).delete()
        total += deleted
