"""User tokens `"<id>|<secret>"`, as SSO/access and the login API hand them out.

The secret is 32 random bytes (URL-safe base64) and only its SHA-256 is stored: a fast hash is
right for a random secret of that size, and checking it costs microseconds. A token expires
after USER_TOKEN_LIFETIME_HOURS, is revocable, and renewing it revokes the old one.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .models import Dispositivo, Sistema, TokenUsuario, Usuario

_TOUCH_EVERY = timedelta(minutes=1)  # `ultimo_uso` is written at most this often


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@sensitive_variables("secret")
def token_emitir(
    *,
    usuario: Usuario,
    sistema: Sistema | None = None,
    dispositivo: Dispositivo | None = None,
    dispositivo_id: int | None = None,
    ip: str | None = None,
) -> tuple[TokenUsuario, str]:
    """A new token for the user; returns it with its `"<id>|<secret>"` form (shown once)."""
    secret = secrets.token_urlsafe(32)
    token = TokenUsuario.objects.create(
        usuario=usuario,
        secreto_hash=_hash(secret),
        sistema=sistema,
        dispositivo_id=dispositivo.pk if dispositivo is not None else dispositivo_id,
        ip=ip,
        expira=timezone.now() + timedelta(hours=settings.USER_TOKEN_LIFETIME_HOURS),
    )
    return token, f"{token.pk}|{secret}"


def parece_token_usuario(raw: str) -> bool:
    """Whether a Bearer value has the user-token form (JWTs and OAuth tokens do not)."""
    ident, sep, secret = raw.partition("|")
    return bool(sep) and _es_id(ident) and bool(secret)


def _es_id(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    return text.isascii() and text.isdigit()


@sensitive_variables("raw", "secret")
def token_autenticar(raw: str, *, tocar: bool = True) -> TokenUsuario | None:
    """The live token `raw` names, or None. The secret is compared in constant time.

    The token comes with `acceso_sistema`: whether its user may still enter its system. With
    `tocar=False` its last use is not recorded (a caller about to revoke it records it then).
    """
    ident, sep, secret = raw.partition("|")
    if not sep or not _es_id(ident) or len(ident) > 18 or not secret or len(secret) > 200:
        return None
    accesos = Usuario.accesos_sistemas.through.objects.filter(
        usuario_id=OuterRef("usuario_id"), sistema_id=OuterRef("sistema_id")
    )
    token = (
        TokenUsuario.objects.select_related("usuario", "sistema")
        .annotate(acceso_sistema=Exists(accesos))
        .filter(pk=int(ident), revocado__isnull=True)
        .first()
    )
    expected = token.secreto_hash if token else "0" * 64
    if not hmac.compare_digest(_hash(secret), expected) or token is None:
        return None
    now = timezone.now()
    if token.expira <= now or not token.usuario.is_active:
        return None
    if tocar and (token.ultimo_uso is None or now - token.ultimo_uso > _TOUCH_EVERY):
        TokenUsuario.objects.filter(pk=token.pk).update(ultimo_uso=now)
    return token


@transaction.atomic
def token_renovar(*, token: TokenUsuario, ip: str | None = None) -> tuple[TokenUsuario, str]:
    """Replace a token by a new one for the same user, system and device; the old one dies.

    The old one is revoked by a conditional UPDATE, so of two concurrent renewals of one token
    exactly one succeeds; the other raises TokenRevocado.
    """
    ahora = timezone.now()
    revocados = TokenUsuario.objects.filter(pk=token.pk, revocado__isnull=True).update(
        revocado=ahora, ultimo_uso=ahora
    )
    if revocados != 1:
        raise TokenRevocado()
    return token_emitir(
        usuario=token.usuario,
        sistema=token.sistema,
        dispositivo_id=token.dispositivo_id,
        ip=ip,
    )


class TokenRevocado(Exception):
    """The token was revoked (or renewed) in the meantime."""


def token_revocar(*, token: TokenUsuario) -> None:
    TokenUsuario.objects.filter(pk=token.pk, revocado__isnull=True).update(revocado=timezone.now())


def tokens_revocar_usuario(*, usuario: Usuario) -> int:
    """Revoke every live token of the user (after a password reset, say)."""
    return TokenUsuario.objects.filter(usuario=usuario, revocado__isnull=True).update(
        revocado=timezone.now()
    )


def tokens_podar(*, dias: int = 30) -> int:
    """Delete tokens expired or revoked more than `dias` days ago."""
    limite = timezone.now() - timedelta(days=dias)
    borrados, _ = TokenUsuario.objects.filter(expira__lt=limite).delete()
    revocados, _ = TokenUsuario.objects.filter(revocado__lt=limite).delete()
    return borrados + revocados
