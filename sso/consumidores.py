"""API consumers: creation, rotation, revocation and the per-request secret check.

A secret is 32 random bytes (URL-safe base64), shown once and stored as HMAC-SHA256 under a
server key: checking it costs microseconds, not a password hash. Each process keeps the
consumers it has seen in memory for `CONSUMIDOR_CACHE_SECONDS`, so a known consumer costs no
query; a revoked or rotated secret therefore stops working everywhere within that time (at once
in the process that made the change).
"""

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import transaction
from django.utils import timezone

from .models import ConsumidorAPI

_CACHE_MAX = 4096


@dataclass(frozen=True)
class Consumidor:
    """What a request needs to know about its consumer (a cached snapshot of the row)."""

    id: int
    nombre: str
    secreto_hash: bytes
    permisos: frozenset[str]


# Least recently used last out: unknown names (cached too, so they cost no query) cannot
# push out the consumers actually in use.
_cache: OrderedDict[str, tuple[float, Consumidor | None]] = OrderedDict()
_cache_lock = threading.Lock()
_hmac_key: bytes | None = None


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


def _load(nombre: str) -> Consumidor | None:
    row = (
        ConsumidorAPI.objects.filter(nombre=nombre, activo=True, revocado__isnull=True)
        .values("id", "nombre", "secreto_hash", "permisos")
        .first()
    )
    if row is None:
        return None
    return Consumidor(
        id=row["id"],
        nombre=row["nombre"],
        secreto_hash=row["secreto_hash"].encode(),
        permisos=frozenset(row["permisos"] or ()),
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


def consumidor_autenticar(*, nombre: str, secreto: str) -> Consumidor | None:
    """The consumer if `secreto` is its current secret, else None. Constant-time compare."""
    if not nombre or not secreto or len(nombre) > 80 or len(secreto) > 256:
        return None
    consumidor = consumidor_lookup(nombre)
    candidate = hash_secret(secreto).encode()
    expected = consumidor.secreto_hash if consumidor else b"0" * 64
    if hmac.compare_digest(candidate, expected) and consumidor is not None:
        return consumidor
    return None


@transaction.atomic
def consumidor_crear(
    *, nombre: str, permisos: list[str], descripcion: str = "", activo: bool = True
) -> tuple[ConsumidorAPI, str]:
    """Create a consumer; returns it with its secret, which is never shown again."""
    secret = _new_secret()
    consumidor = ConsumidorAPI(
        nombre=nombre,
        descripcion=descripcion,
        permisos=sorted(set(permisos)),
        activo=activo,
        secreto_hash=hash_secret(secret),
    )
    consumidor.full_clean()
    consumidor.save()
    forget_now_and_on_commit(nombre)
    return consumidor, secret


@transaction.atomic
def consumidor_rotar(*, consumidor: ConsumidorAPI) -> str:
    """Give the consumer a new secret; the old one stops working. A revoked one stays revoked."""
    if consumidor.revocado is not None:
        raise ValidationError(f"{consumidor.nombre} is revoked: create a new consumer instead.")
    secret = _new_secret()
    consumidor.secreto_hash = hash_secret(secret)
    consumidor.rotado = timezone.now()
    consumidor.save(update_fields=["secreto_hash", "rotado"])
    forget_now_and_on_commit(consumidor.nombre)
    return secret


@transaction.atomic
def consumidor_revocar(*, consumidor: ConsumidorAPI) -> None:
    consumidor.activo = False
    consumidor.revocado = timezone.now()
    consumidor.save(update_fields=["activo", "revocado"])
    forget_now_and_on_commit(consumidor.nombre)
