"""JWTs for integrations (seed 001, `POST /v2/auth/gettoken`), and their verification.

Tokens are RS256, signed with OIDC_RSA_PRIVATE_KEY — the key of OpenID Connect's id_tokens —
and name it in the header's `kid`, its RFC 7638 thumbprint, so other systems verify them with
the portal's JWKS. Verification pins the algorithm (RS256 only: no `none`, no HS256 keyed with
the public key) and the `kid`, and checks `exp`, `iss`, `aud`, that the user is still active,
and that the token is not older than the user's `jwt_valido_desde` (moved by a password change
or a deactivation).
"""

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions

from incidencias.db import cursor_preparado, filas, sentencia

from .acceso import acceso_password
from .models import OperadorVirtual, Usuario

logger = logging.getLogger("incidencias.sso.jwt")

ALGORITMO = "RS256"
TOKEN_INVALIDO = "Token inválido."  # noqa: S105 - messages, not secrets
TOKEN_VENCIDO = "Token vencido."  # noqa: S105
TOKEN_REVOCADO = "Token revocado."  # noqa: S105
ALGORITMO_NO_PERMITIDO = "Algoritmo de firma no permitido."
CLAVE_DESCONOCIDA = "Clave de firma desconocida."
USUARIO_INACTIVO = "Usuario inactivo o inexistente."


# --- Keys ------------------------------------------------------------------------------------


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public(clave) -> rsa.RSAPublicKey:
    if isinstance(clave, str | bytes):
        texto = clave.encode("ascii") if isinstance(clave, str) else clave
        try:
            clave = serialization.load_pem_public_key(texto)
        except ValueError:
            clave = serialization.load_pem_private_key(texto, password=None)
    if isinstance(clave, rsa.RSAPrivateKey):
        clave = clave.public_key()
    if not isinstance(clave, rsa.RSAPublicKey):
        raise TypeError("An RSA key is needed.")
    return clave


def kid_de(clave_publica) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256, base64url without padding): the `kid` of
    the JWTs it signs and of its entry in the JWKS.

    `clave_publica`: an RSA public key of `cryptography` (a private key or a PEM also do).
    """
    numeros = _public(clave_publica).public_numbers()
    # Only the required members, in lexicographic order, no whitespace (RFC 7638 §3.2).
    miembros = {"e": _b64url_uint(numeros.e), "kty": "RSA", "n": _b64url_uint(numeros.n)}
    canonico = json.dumps(miembros, separators=(",", ":"), sort_keys=True).encode("ascii")
    return base64.urlsafe_b64encode(hashlib.sha256(canonico).digest()).rstrip(b"=").decode()


def jwk_publica(clave_publica) -> dict:
    """The key as a public JWK (RFC 7517), as a JWKS lists it."""
    numeros = _public(clave_publica).public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": ALGORITMO,
        "kid": kid_de(clave_publica),
        "n": _b64url_uint(numeros.n),
        "e": _b64url_uint(numeros.e),
    }


@dataclass(frozen=True)
class _Clave:
    privada: rsa.RSAPrivateKey
    publica: rsa.RSAPublicKey
    kid: str


@lru_cache(maxsize=2)
def _cargar(pem: str) -> _Clave:
    if not pem:
        raise ImproperlyConfigured("OIDC_RSA_PRIVATE_KEY is not set: JWTs cannot be signed.")
    privada = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(privada, rsa.RSAPrivateKey) or privada.key_size < 2048:
        raise ImproperlyConfigured("OIDC_RSA_PRIVATE_KEY must be an RSA key of 2048 bits or more.")
    publica = privada.public_key()
    return _Clave(privada=privada, publica=publica, kid=kid_de(publica))


def clave_firma() -> _Clave:
    """The signing key from settings (parsed once per process and key)."""
    return _cargar(settings.OIDC_RSA_PRIVATE_KEY)


# --- Issue -----------------------------------------------------------------------------------


def operador_alias(*, usuario: Usuario) -> str:
    """The alias of the user's virtual operator: their own, or DEFAULT_VIRTUAL_OPERATOR."""
    operador: OperadorVirtual | None = (
        usuario.operador_virtual if usuario.operador_virtual_id else None
    )
    if operador is not None and operador.activo:
        return operador.alias
    if operador is not None:
        return ""  # an inactive operator: no alias matches it
    return settings.DEFAULT_VIRTUAL_OPERATOR


def jwt_emitir(*, usuario: Usuario, operador: str) -> tuple[str, datetime]:
    """A signed JWT for `usuario` under the virtual operator alias `operador`, and when it
    expires (aware, UTC)."""
    clave = clave_firma()
    ahora = timezone.now().astimezone(UTC).replace(microsecond=0)
    expira = ahora + timedelta(minutes=settings.JWT_LIFETIME_MINUTES)
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(usuario.pk),
        "iat": int(ahora.timestamp()),
        "nbf": int(ahora.timestamp()),
        "exp": int(expira.timestamp()),
        "jti": secrets.token_urlsafe(16),
        # The seed's own claims.
        "unique_name": usuario.email or usuario.username,
        "given_name": usuario.nombre_visible,
        "usertype": "User",
        "virtualoperator": operador,
    }
    token = jwt.encode(
        claims, clave.privada, algorithm=ALGORITMO, headers={"kid": clave.kid, "typ": "JWT"}
    )
    return token, expira


@dataclass(frozen=True)
class TokenJWT:
    usuario: Usuario
    token: str
    expira: datetime
    operador: str


@sensitive_variables("password")
def jwt_solicitar(*, identificador: str, password: str, operador: str, ip: str | None) -> TokenJWT:
    """`/v2/auth/gettoken`: user (email or login), password and virtual operator alias → JWT.

    The lockout, timing and counters are SSO/access's (`acceso_password`); a wrong operator
    is answered, and counted, like a wrong password. Raises AccesoBloqueado or
    CredencialesInvalidas.
    """
    pedido = operador.strip().casefold()

    def operador_coincide(usuario: Usuario) -> bool:
        alias = operador_alias(usuario=usuario)
        return bool(alias) and secrets.compare_digest(
            alias.casefold().encode("utf-8"), pedido.encode("utf-8")
        )

    usuario = acceso_password(
        identificador=identificador, password=password, ip=ip, comprobar=operador_coincide
    )
    alias = operador_alias(usuario=usuario)
    token, expira = jwt_emitir(usuario=usuario, operador=alias)
    return TokenJWT(usuario=usuario, token=token, expira=expira, operador=alias)


# --- Verification ----------------------------------------------------------------------------


def parece_jwt(raw: str) -> bool:
    """Whether a Bearer value has a JWS's form (three base64url parts), as opposed to a user
    token "<id>|<secret>" or an opaque OAuth2 access token."""
    partes = raw.split(".")
    return len(partes) == 3 and all(partes[:2]) and raw.startswith("eyJ")


def _usuario(pk: int) -> Usuario | None:
    """The user by primary key, in a statement written by hand (as sso.tokens reads a user
    token): on every JWT request, compiling the queryset cost more than running it."""
    connection = connections[router.db_for_read(Usuario)]
    lector = filas(connection, ("u", Usuario))
    sql = sentencia(
        connection,
        "SELECT {columnas} FROM {usuarios} u WHERE u.id = %s",
        lambda q: {"columnas": lector.columnas, "usuarios": q(Usuario._meta.db_table)},
    )
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    return lector.instancias(connection, row)[0] if row else None


def jwt_autenticar(raw: str) -> Usuario:
    """The active user a JWT of gettoken names; AuthenticationFailed (401) with the reason
    otherwise: malformed, another algorithm, unknown key, bad signature, expired, another
    issuer or audience, revoked, or the user inactive or gone."""
    try:
        cabecera = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as exc:
        raise exceptions.AuthenticationFailed(TOKEN_INVALIDO) from exc
    if cabecera.get("alg") != ALGORITMO:
        raise exceptions.AuthenticationFailed(ALGORITMO_NO_PERMITIDO)
    clave = clave_firma()
    kid = cabecera.get("kid")
    if not isinstance(kid, str) or not secrets.compare_digest(kid, clave.kid):
        raise exceptions.AuthenticationFailed(CLAVE_DESCONOCIDA)
    try:
        claims = jwt.decode(
            raw,
            clave.publica,
            algorithms=[ALGORITMO],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise exceptions.AuthenticationFailed(TOKEN_VENCIDO) from exc
    except jwt.PyJWTError as exc:
        logger.info("JWT refused: %s", exc.__class__.__name__)
        raise exceptions.AuthenticationFailed(TOKEN_INVALIDO) from exc
    sub, iat = claims.get("sub"), claims.get("iat")
    if not isinstance(sub, str) or not sub.isdigit() or not 0 < int(sub) < 2**63:
        raise exceptions.AuthenticationFailed(TOKEN_INVALIDO)
    if not isinstance(iat, int | float):
        raise exceptions.AuthenticationFailed(TOKEN_INVALIDO)
    usuario = _usuario(int(sub))
    if usuario is None or not usuario.is_active:
        raise exceptions.AuthenticationFailed(USUARIO_INACTIVO)
    valido_desde = usuario.jwt_valido_desde
    # `iat` has whole seconds: a token of the very second of a password change still passes.
    if valido_desde is not None and iat < int(valido_desde.timestamp()):
        raise exceptions.AuthenticationFailed(TOKEN_REVOCADO)
    return usuario
