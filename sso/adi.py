"""ADI: system tokens and the signed, single-use access requests built with them.

A system (`Sistema`) gets an ADI token from `sistema_adi_registrar`: 32 random bytes (URL-safe
base64), shown once and stored only as its SHA-256 (`adi_token_hash`), like user tokens: a fast
hash is right for a random secret of that size.

`solicitud_adi_generar` checks a system's token (constant time) and issues an access request
for a user. Wire format of the request (`base64_encoded`, sent back as `token`):

    base64url( canonical_json + ":" + signature )          (padding "=" optional on input)

- `canonical_json` is `{"e": email, "exp": unix seconds, "n": nonce, "s": system alias,
  "u": username, "v": 1}` with sorted keys, no spaces, UTF-8.
- `signature` is `django.core.signing.Signer(salt=SALT, algorithm="sha256")`: HMAC-SHA256 under
  a key derived from SECRET_KEY and the dedicated salt (SECRET_KEY_FALLBACKS are accepted, so
  the key rotates the usual Django way), URL-safe base64.

The request lives `LIFETIME` (5 minutes). Its nonce (24 random bytes) is stored as a
`SolicitudADI` row. `solicitud_adi_validar` checks the signature, the expiry and that the system
is still active, then consumes the nonce with one conditional UPDATE
(`usado IS NULL AND expira > now`): of any number of concurrent validations exactly one
updates the row, so a request authenticates once. Every failure is the same `SolicitudInvalida`
(the caller cannot tell tampering from replay or expiry). `solicitud_adi_podar` deletes old
rows; an expired request stays refused without its row because the expiry is signed.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .models import Sistema, SolicitudADI

SALT = "sso.adi.solicitud"
LIFETIME = timedelta(minutes=5)
KEEP_USED = timedelta(days=1)  # rows are pruned this long after they expired
MAX_WIRE_LENGTH = 4096
_VERSION = 1
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_DUMMY_HASH = "0" * 64


class SistemaInvalido(Exception):
    """Unknown or inactive system, or a wrong ADI token (one error, no oracle)."""


class SolicitudInvalida(Exception):
    """Tampered, malformed, expired, replayed, or for a system no longer active."""


@dataclass(frozen=True)
class RegistroSistema:
    sistema: Sistema
    creado: bool
    token: str | None  # the new ADI token, shown once; None when it was not rotated


@dataclass(frozen=True)
class SolicitudValida:
    username: str
    email: str
    sistema: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT, algorithm="sha256")


@sensitive_variables("token")
def _issue_token(sistema: Sistema, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    sistema.adi_token_hash = _hash(token)
    sistema.adi_token_creado = now
    return token


@transaction.atomic
def sistema_adi_registrar(
    *, alias: str, activo: bool, rotar: bool, now: datetime | None = None
) -> RegistroSistema:
    """Create the system `alias` (with a token), or update its state and, if `rotar`, its token.

    A new system always gets a token: one without it could not generate requests.
    """
    now = now or timezone.now()
    sistema = Sistema.objects.select_for_update().filter(alias=alias).first()
    if sistema is None:
        sistema = Sistema(alias=alias, nombre=alias, activo=activo)
        token = _issue_token(sistema, now)
        try:
            with transaction.atomic():
                sistema.save()
            return RegistroSistema(sistema=sistema, creado=True, token=token)
        except IntegrityError:
            # A concurrent call created it first: update that row instead.
            sistema = Sistema.objects.select_for_update().get(alias=alias)
    token = _issue_token(sistema, now) if rotar else None
    sistema.activo = activo
    sistema.save(update_fields=["activo", "adi_token_hash", "adi_token_creado"])
    return RegistroSistema(sistema=sistema, creado=False, token=token)


@sensitive_variables("token")
def sistema_adi_autenticar(*, alias: str, token: str) -> Sistema:
    """The active system `alias` if `token` is its ADI token; else SistemaInvalido."""
    sistema = Sistema.objects.filter(alias=alias).first() if alias else None
    expected = (sistema.adi_token_hash if sistema else "") or _DUMMY_HASH
    matches = hmac.compare_digest(_hash(token).encode(), expected.encode())
    if not matches or sistema is None or not sistema.activo or not sistema.adi_token_hash:
        raise SistemaInvalido
    return sistema


def _encode(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signed = _signer().sign(canonical)
    return base64.urlsafe_b64encode(signed.encode("utf-8")).decode("ascii").rstrip("=")


def _decode(wire: str) -> dict:
    """The signed payload of `wire`, or SolicitudInvalida. Expiry is not checked here."""
    if not isinstance(wire, str) or len(wire) > MAX_WIRE_LENGTH or not _BASE64URL.match(wire):
        raise SolicitudInvalida
    try:
        raw = base64.urlsafe_b64decode(wire.rstrip("=") + "=" * (-len(wire.rstrip("=")) % 4))
        canonical = _signer().unsign(raw.decode("utf-8"))
        payload = json.loads(canonical)
    except (binascii.Error, ValueError, signing.BadSignature) as exc:
        raise SolicitudInvalida from exc
    fields = {"v": int, "u": str, "e": str, "s": str, "n": str, "exp": int}
    if not isinstance(payload, dict) or payload.keys() != fields.keys():
        raise SolicitudInvalida
    for key, kind in fields.items():
        if type(payload[key]) is not kind:
            raise SolicitudInvalida
    if payload["v"] != _VERSION:
        raise SolicitudInvalida
    return payload


@sensitive_variables("token")
def solicitud_adi_generar(
    *, alias: str, token: str, username: str, email: str = "", now: datetime | None = None
) -> str:
    """A signed access request (wire form) for `username` on the system; SistemaInvalido if the
    system's token is wrong or the system unknown or inactive."""
    now = now or timezone.now()
    sistema = sistema_adi_autenticar(alias=alias, token=token)
    expira = now + LIFETIME
    nonce = secrets.token_urlsafe(24)
    SolicitudADI.objects.create(
        nonce=nonce, sistema=sistema, username=username, email=email, expira=expira
    )
    payload = {
        "v": _VERSION,
        "u": username,
        "e": email,
        "s": sistema.alias,
        "n": nonce,
        "exp": int(expira.timestamp()),
    }
    return _encode(payload)


@sensitive_variables("wire")
def solicitud_adi_validar(*, wire: str, now: datetime | None = None) -> SolicitudValida:
    """The user of a valid request, consuming it; SolicitudInvalida otherwise (and on replay)."""
    now = now or timezone.now()
    payload = _decode(wire)
    if payload["exp"] <= now.timestamp():
        raise SolicitudInvalida
    if not Sistema.objects.filter(alias=payload["s"], activo=True).exists():
        raise SolicitudInvalida
    # Only this row's own columns in the WHERE: PostgreSQL rechecks them after waiting on a
    # concurrent UPDATE of the same row, so exactly one of concurrent validations gets 1.
    consumed = SolicitudADI.objects.filter(
        nonce=payload["n"], usado__isnull=True, expira__gt=now
    ).update(usado=now)
    if consumed != 1:
        raise SolicitudInvalida
    return SolicitudValida(username=payload["u"], email=payload["e"], sistema=payload["s"])


def solicitud_adi_podar(*, now: datetime | None = None, conservar: timedelta = KEEP_USED) -> int:
    """Delete access requests that expired more than `conservar` ago; returns how many."""
    now = now or timezone.now()
    deleted, _ = SolicitudADI.objects.filter(expira__lt=now - conservar).delete()
    return deleted
