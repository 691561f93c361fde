"""API consumers: creation, rotation, revocation and the per-request secret check.

A secret is 32 random bytes (URL-safe base64), shown once and stored as HMAC-SHA256 under a
server key: checking it costs microseconds, not a password hash. Each process keeps the
consumers it has seen in memory for `CONSUMIDOR_CACHE_SECONDS`, so a known consumer costs no
query; a revoked or rotated secret therefore stops working everywhere within that time (at once
in the process that made the change).

A static key made as safe as one can be: one purpose per consumer (its permissions), an optional
list of the addresses it may call from, rotation with an overlap window (the previous secret
keeps working until `anterior_vence`, so a product switches without downtime), and the time of
last use, written at most once a minute per consumer and process so that the check stays
query-free.
"""

import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .models import ConsumidorAPI

logger = logging.getLogger(__name__)

_CACHE_MAX = 4096
# Compared against when there is nothing to compare against: not hex, so no HMAC matches it.
_NO_HASH = b"-" * 64
# `ultimo_uso` is written at most this often per consumer and process.
USO_INTERVALO = 60.0
# A longer overlap than this is not rotation any more.
SOLAPAMIENTO_MAX = timedelta(days=90)
# Wall clock (epoch seconds) of the overlap and last-use checks; tests may replace it.
_reloj = time.time


@dataclass(frozen=True)
class Consumidor:
    """What a request needs to know about its consumer (a cached snapshot of the row)."""

    id: int
    nombre: str
    secreto_hash: bytes
    permisos: frozenset[str]
    anterior_hash: bytes = _NO_HASH  # the previous secret's, during the overlap window
    anterior_vence: float = 0.0  # epoch seconds; the previous secret works before this
    restringido: bool = False  # it has a list of allowed addresses
    redes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    ultimo_uso: float = 0.0  # epoch seconds, as the row said when loaded


# Least recently used last out: unknown names (cached too, so they cost no query) cannot
# push out the consumers actually in use.
_cache: OrderedDict[str, tuple[float, Consumidor | None]] = OrderedDict()
_cache_lock = threading.Lock()
_hmac_key: bytes | None = None
# Consumer id -> when this process last wrote its `ultimo_uso` (epoch seconds).
_usos: dict[int, float] = {}


def _key() -> bytes:
    global _hmac_key
    if _hmac_key is None:
        configured = settings.CONSUMIDOR_HMAC_KEY
        if configured:
            _hmac_key = configured.encode()
        else:
            _hmac_key = hmac.new(
                settings.SECRET_KEY.encode(), b"consumidor-api-secret", hashlib.sha256
            ).digest()
    return _hmac_key


def _on_setting_changed(*, setting, **kwargs):
    global _hmac_key
    if setting in ("CONSUMIDOR_HMAC_KEY", "SECRET_KEY"):
        _hmac_key = None
    if setting.startswith("CONSUMIDOR_") or setting == "SECRET_KEY":
        forget_all()


setting_changed.connect(_on_setting_changed)


def hash_secret(secret: str) -> str:
    return hmac.new(_key(), secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def forget(nombre: str) -> None:
    with _cache_lock:
        _cache.pop(nombre, None)


def forget_all() -> None:
    with _cache_lock:
        _cache.clear()
        _usos.clear()


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def _redes(nombre: str, values) -> tuple:
    redes = []
    for value in values or ():
        try:
            redes.append(ipaddress.ip_network(value, strict=False))
        except (TypeError, ValueError):
            # Written around clean(): the entry allows nothing, the others still apply.
            logger.error("API consumer %s: ignoring allowed address %r", nombre, value)
    return tuple(redes)


def _load(nombre: str) -> Consumidor | None:
    row = (
        ConsumidorAPI.objects.filter(nombre=nombre, activo=True, revocado__isnull=True)
        .values(
            "id",
            "nombre",
            "secreto_hash",
            "permisos",
            "secreto_anterior_hash",
            "anterior_vence",
            "ips_permitidas",
            "ultimo_uso",
        )
        .first()
    )
    if row is None:
        return None
    anterior = row["secreto_anterior_hash"] if row["anterior_vence"] is not None else ""
    return Consumidor(
        id=row["id"],
        nombre=row["nombre"],
        secreto_hash=row["secreto_hash"].encode(),
        permisos=frozenset(row["permisos"] or ()),
        anterior_hash=anterior.encode() if anterior else _NO_HASH,
        anterior_vence=_epoch(row["anterior_vence"]) if anterior else 0.0,
        restringido=bool(row["ips_permitidas"]),
        redes=_redes(row["nombre"], row["ips_permitidas"]),
        ultimo_uso=_epoch(row["ultimo_uso"]),
    )


def forget_now_and_on_commit(nombre: str) -> None:
    # Now, for this transaction's own reads; after commit, in case a concurrent request
    # cached the old row in between.
    forget(nombre)
    transaction.on_commit(lambda: forget(nombre))


def consumidor_lookup(nombre: str) -> Consumidor | None:
    """The active consumer called `nombre`, from this process's cache when fresh."""
    now = time.monotonic()
    hit = _cache.get(nombre)
    if hit is not None and hit[0] > now:
        if hit[1] is not None:
            with _cache_lock:
                if nombre in _cache:
                    _cache.move_to_end(nombre)
        return hit[1]
    consumidor = _load(nombre)
    with _cache_lock:
        _cache[nombre] = (now + settings.CONSUMIDOR_CACHE_SECONDS, consumidor)
        _cache.move_to_end(nombre)
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return consumidor


def _permitida(ip: str | None, redes) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:10.0.0.1 from a dual-stack socket
        address = address.ipv4_mapped
    return any(address in net for net in redes)


def _registrar_uso(consumidor: Consumidor, now: float) -> None:
    with _cache_lock:
        if now - _usos.get(consumidor.id, 0.0) < USO_INTERVALO:
            return  # another thread of this process just did
        _usos[consumidor.id] = now
    try:
        ConsumidorAPI.objects.filter(pk=consumidor.id).update(
            ultimo_uso=datetime.fromtimestamp(now, tz=UTC)
        )
    except DatabaseError:
        if connection.in_atomic_block:
            raise  # the transaction is broken: hiding that would be worse
        logger.warning("Could not record the last use of API consumer %s", consumidor.nombre)


def consumidor_autenticar(*, nombre: str, secreto: str, ip: str | None = None) -> Consumidor | None:
    """The consumer if `secreto` is its current secret (or its previous one, inside the overlap
    window after a rotation) and, when it has a list of allowed addresses, `ip` is in it; else
    None. Both hashes are always compared, in constant time. A consumer with such a list is
    refused when `ip` is not given."""
    if not nombre or not secreto or len(nombre) > 80 or len(secreto) > 256:
        return None
    consumidor = consumidor_lookup(nombre)
    candidate = hash_secret(secreto).encode()
    if consumidor is None:
        hmac.compare_digest(candidate, _NO_HASH)
        hmac.compare_digest(candidate, _NO_HASH)
        return None
    actual = hmac.compare_digest(candidate, consumidor.secreto_hash)
    anterior = hmac.compare_digest(candidate, consumidor.anterior_hash)
    now = _reloj()
    vigente = now < consumidor.anterior_vence
    if not (actual | (anterior & vigente)):
        if anterior:
            logger.info("API consumer %s refused: previous secret after its overlap", nombre)
        return None
    if consumidor.restringido and not _permitida(ip, consumidor.redes):
        logger.info("API consumer %s refused: address %s is not allowed", nombre, ip)
        return None
    if now - max(consumidor.ultimo_uso, _usos.get(consumidor.id, 0.0)) >= USO_INTERVALO:
        _registrar_uso(consumidor, now)
    return consumidor


@transaction.atomic
def consumidor_crear(
    *,
    nombre: str,
    permisos: list[str],
    descripcion: str = "",
    activo: bool = True,
    ips_permitidas: list[str] | None = None,
) -> tuple[ConsumidorAPI, str]:
    """Create a consumer; returns it with its secret, which is never shown again."""
    secret = _new_secret()
    consumidor = ConsumidorAPI(
        nombre=nombre,
        descripcion=descripcion,
        permisos=sorted(set(permisos)),
        activo=activo,
        ips_permitidas=list(ips_permitidas or []),
        secreto_hash=hash_secret(secret),
    )
    consumidor.full_clean()
    consumidor.save()
    forget_now_and_on_commit(nombre)
    return consumidor, secret


@transaction.atomic
def consumidor_rotar(*, consumidor: ConsumidorAPI, solapamiento: timedelta | None = None) -> str:
    """Give the consumer a new secret. The current one keeps working for `solapamiento`
    (default: CONSUMIDOR_SOLAPAMIENTO_HORAS; zero: it stops at once), replacing any earlier
    previous secret. A revoked consumer stays revoked. Updates `consumidor` in place, so
    `consumidor.anterior_vence` says until when the old secret works (None: it does not)."""
    if solapamiento is None:
        solapamiento = timedelta(hours=settings.CONSUMIDOR_SOLAPAMIENTO_HORAS)
    if not timedelta(0) <= solapamiento <= SOLAPAMIENTO_MAX:
        raise ValidationError(
            f"The overlap must be between 0 and {SOLAPAMIENTO_MAX.days * 24} hours."
        )
    # Locked, so two rotations at once cannot both keep the same "previous" secret.
    row = ConsumidorAPI.objects.select_for_update().get(pk=consumidor.pk)
    if row.revocado is not None:
        raise ValidationError(f"{consumidor.nombre} is revoked: create a new consumer instead.")
    secret = _new_secret()
    now = timezone.now()
    overlap = solapamiento > timedelta(0)
    fields = {
        "secreto_hash": hash_secret(secret),
        "secreto_anterior_hash": row.secreto_hash if overlap else "",
        "anterior_vence": now + solapamiento if overlap else None,
        "rotado": now,
    }
    ConsumidorAPI.objects.filter(pk=row.pk).update(**fields)
    for field, value in fields.items():
        setattr(consumidor, field, value)
    forget_now_and_on_commit(consumidor.nombre)
    return secret


@transaction.atomic
def consumidor_revocar(*, consumidor: ConsumidorAPI) -> None:
    """Revoke the consumer: its secret and any previous one stop working."""
    consumidor.activo = False
    consumidor.revocado = timezone.now()
    consumidor.secreto_anterior_hash = ""
    consumidor.anterior_vence = None
    consumidor.save(update_fields=["activo", "revocado", "secreto_anterior_hash", "anterior_vence"])
    forget_now_and_on_commit(consumidor.nombre)
