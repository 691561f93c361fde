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
from django.db import connections, router, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from incidencias.db import cursor_preparado, filas, sentencia

from .models import Dispositivo, Sistema, TokenUsuario, Usuario

_TOUCH_EVERY = timedelta(minutes=1)  # `ultimo_uso` is written at most this often


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# A sign-in: the user's last login and address recorded and the token inserted, in one
# statement (one round trip, one commit).
_ENTRAR_SQL = """
WITH entrada AS (
    UPDATE sso_usuario SET last_login = %(ahora)s, ultima_ip = %(ip)s WHERE id = %(usuario)s
)
INSERT INTO sso_tokenusuario
       (usuario_id, secreto_hash, sistema_id, dispositivo_id, ip, creado, ultimo_uso, expira,
        revocado)
VALUES (%(usuario)s, %(hash)s, %(sistema)s, %(dispositivo)s, %(ip)s, %(ahora)s, NULL,
        %(expira)s, NULL)
RETURNING id
"""


@sensitive_variables("secret")
def token_emitir(
    *,
    usuario: Usuario,
    sistema: Sistema | None = None,
    dispositivo: Dispositivo | None = None,
    dispositivo_id: int | None = None,
    ip: str | None = None,
    al_entrar: bool = False,
) -> tuple[TokenUsuario, str]:
    """A new token for the user; returns it with its `"<id>|<secret>"` form (shown once).

    With `al_entrar` the user's `last_login` and `ultima_ip` are recorded as well (a sign-in).
    """
    secret = secrets.token_urlsafe(32)
    ahora = timezone.now()
    token = TokenUsuario(
        usuario=usuario,
        secreto_hash=_hash(secret),
        sistema=sistema,
        dispositivo_id=dispositivo.pk if dispositivo is not None else dispositivo_id,
        ip=ip,
        creado=ahora,
        expira=ahora + timedelta(hours=settings.USER_TOKEN_LIFETIME_HOURS),
    )
    connection = connections[router.db_for_write(TokenUsuario)]
    if al_entrar and connection.vendor == "postgresql":
        with cursor_preparado(connection.alias) as cursor:
            cursor.execute(
                _ENTRAR_SQL,
                {
                    "usuario": usuario.pk,
                    "hash": token.secreto_hash,
                    "sistema": token.sistema_id,
                    "dispositivo": token.dispositivo_id,
                    "ip": ip,
                    "ahora": ahora,
                    "expira": token.expira,
                },
            )
            token.pk = cursor.fetchone()[0]
        token._state.adding = False
        token._state.db = connection.alias
    else:
        with transaction.atomic(using=connection.alias):
            if al_entrar:
                Usuario.objects.filter(pk=usuario.pk).update(last_login=ahora, ultima_ip=ip)
            token.save(force_insert=True)
    if al_entrar:
        usuario.last_login, usuario.ultima_ip = ahora, ip
    return token, f"{token.pk}|{secret}"


def parece_token_usuario(raw: str) -> bool:
    """Whether a Bearer value has the user-token form (JWTs and OAuth tokens do not)."""
    ident, sep, secret = raw.partition("|")
    return bool(sep) and _es_id(ident) and bool(secret)


def _es_id(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    return text.isascii() and text.isdigit()


# The token, its user and its system in one statement, with whether the user may still enter
# that system. Written by hand: this runs on every Bearer request and on every renewal, and
# compiling the equivalent queryset costs more than running it.
_LEER_SQL = """
SELECT {columnas},
       EXISTS (SELECT 1 FROM {accesos} a WHERE a.{acceso_usuario} = t.usuario_id
                                          AND a.{acceso_sistema} = t.sistema_id)
  FROM {tokens} t
  JOIN {usuarios} u ON u.id = t.usuario_id
  LEFT JOIN {sistemas} s ON s.id = t.sistema_id
 WHERE t.id = %s AND t.revocado IS NULL
"""


def nombres_accesos(q) -> dict[str, str]:
    """The quoted names of the user ↔ system access table, for hand-written SQL."""
    accesos = Usuario.accesos_sistemas.through._meta
    return {
        "accesos": q(accesos.db_table),
        "acceso_usuario": q(accesos.get_field("usuario").column),
        "acceso_sistema": q(accesos.get_field("sistema").column),
    }


def _leer_sql(connection, lector) -> str:
    return sentencia(
        connection,
        _LEER_SQL,
        lambda q: {
            "columnas": lector.columnas,
            **nombres_accesos(q),
            "tokens": q(TokenUsuario._meta.db_table),
            "usuarios": q(Usuario._meta.db_table),
            "sistemas": q(Sistema._meta.db_table),
        },
    )


# Where the token's secret hash is in a row of _LEER_SQL (the token's columns come first).
_COLUMNA_HASH = [f.name for f in TokenUsuario._meta.concrete_fields].index("secreto_hash")
_MODELOS_LEIDOS = (("t", TokenUsuario), ("u", Usuario), ("s", Sistema))


@sensitive_variables("raw", "secret")
def token_autenticar(raw: str, *, tocar: bool = True) -> TokenUsuario | None:
    """The live token `raw` names, or None. The secret is compared in constant time.

    The token comes with its user and system loaded, and `acceso_sistema`: whether its user
    may still enter its system. With `tocar=False` its last use is not recorded (a caller about
    to revoke it records it then).
    """
    ident, sep, secret = raw.partition("|")
    if not sep or not _es_id(ident) or len(ident) > 18 or not secret or len(secret) > 200:
        return None
    connection = connections[router.db_for_read(TokenUsuario)]
    lector = filas(connection, *_MODELOS_LEIDOS)
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(_leer_sql(connection, lector), [int(ident)])
        row = cursor.fetchone()
    expected = row[_COLUMNA_HASH] if row else "0" * 64
    if not hmac.compare_digest(_hash(secret), expected) or row is None:
        return None
    token, usuario, sistema = lector.instancias(connection, row)
    token.usuario, token.sistema = usuario, sistema
    token.acceso_sistema = bool(row[-1])
    now = timezone.now()
    if token.expira <= now or not usuario.is_active:
        return None
    if tocar and (token.ultimo_uso is None or now - token.ultimo_uso > _TOUCH_EVERY):
        TokenUsuario.objects.filter(pk=token.pk).update(ultimo_uso=now)
    return token


# Revoke the old token and insert its successor in one statement, so the renewal is atomic
# without a transaction of its own and costs one round trip. The UPDATE's guard makes two
# concurrent renewals of one token give exactly one successor.
_RENOVAR_SQL = """
WITH viejo AS (
    UPDATE sso_tokenusuario SET revocado = %(ahora)s, ultimo_uso = %(ahora)s
     WHERE id = %(id)s AND revocado IS NULL
    RETURNING usuario_id, sistema_id, dispositivo_id
)
INSERT INTO sso_tokenusuario
       (usuario_id, secreto_hash, sistema_id, dispositivo_id, ip, creado, ultimo_uso, expira,
        revocado)
SELECT usuario_id, %(hash)s, sistema_id, dispositivo_id, %(ip)s, %(ahora)s, NULL, %(expira)s,
       NULL
  FROM viejo
RETURNING id
"""


@sensitive_variables("secret")
def token_renovar(*, token: TokenUsuario, ip: str | None = None) -> tuple[TokenUsuario, str]:
    """Replace a token by a new one for the same user, system and device; the old one dies.

    The old one is revoked by a conditional UPDATE, so of two concurrent renewals of one token
    exactly one succeeds; the other raises TokenRevocado.
    """
    connection = connections[router.db_for_write(TokenUsuario)]
    if connection.vendor != "postgresql":
        return _token_renovar_orm(token=token, ip=ip)
    ahora = timezone.now()
    secret = secrets.token_urlsafe(32)
    nuevo = TokenUsuario(
        usuario_id=token.usuario_id,
        secreto_hash=_hash(secret),
        sistema_id=token.sistema_id,
        dispositivo_id=token.dispositivo_id,
        ip=ip,
        creado=ahora,
        expira=ahora + timedelta(hours=settings.USER_TOKEN_LIFETIME_HOURS),
    )
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(
            _RENOVAR_SQL,
            {
                "id": token.pk,
                "ahora": ahora,
                "hash": nuevo.secreto_hash,
                "ip": ip,
                "expira": nuevo.expira,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise TokenRevocado()
    nuevo.pk = row[0]
    nuevo._state.adding = False
    nuevo._state.db = connection.alias
    return nuevo, f"{nuevo.pk}|{secret}"


@transaction.atomic
def _token_renovar_orm(*, token: TokenUsuario, ip: str | None) -> tuple[TokenUsuario, str]:
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
