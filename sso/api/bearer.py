"""`Authorization: Bearer` with any of the three kinds of token, told apart by their form:

- a user token `"<id>|<secret>"` (SSO/access, the login API): `token_autenticar`;
- a JWT (three base64url parts, /v2/auth/gettoken): `sso.jwt.jwt_autenticar`;
- anything else: an OAuth2 access token, looked up by its SHA-256 (one query, with its user
  and client).

`BearerAuthentication` authenticates the login API (envelope D); SSO/refreshUserToken reads its
user token itself (`bearer`).
"""

import hashlib

from django.db import connections, router
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.models import get_access_token_model, get_application_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from incidencias.db import cursor_preparado, filas, sentencia

from ..jwt import jwt_autenticar, parece_jwt
from ..models import Usuario
from ..tokens import parece_token_usuario, token_autenticar


def bearer(request) -> str:
    """The Bearer value of the request, or ""."""
    header = get_authorization_header(request).split()
    if len(header) != 2 or header[0].lower() != b"bearer":
        return ""
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        return ""


# The token with its user and client, written by hand like the user token's lookup
# (sso.tokens): compiling the equivalent select_related queryset costs more than running it.
_OAUTH_SQL = """
SELECT {columnas}
  FROM {tokens} a
  JOIN {usuarios} u ON u.id = a.user_id
  LEFT JOIN {clientes} c ON c.id = a.application_id
 WHERE a.token_checksum = %s
"""


def token_oauth_autenticar(raw: str):
    """The live OAuth2 access token `raw` names (with its user and client), or None."""
    if len(raw) > 255:
        return None
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    modelo = get_access_token_model()
    connection = connections[router.db_for_read(modelo)]
    modelos = (("a", modelo), ("u", Usuario), ("c", get_application_model()))
    lector = filas(connection, *modelos)
    sql = sentencia(
        connection,
        _OAUTH_SQL,
        lambda q: {
            "columnas": lector.columnas,
            "tokens": q(modelo._meta.db_table),
            "usuarios": q(Usuario._meta.db_table),
            "clientes": q(get_application_model()._meta.db_table),
        },
    )
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, [checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    token, usuario, cliente = lector.instancias(connection, row)
    token.user, token.application = usuario, cliente
    if (
        token.expires <= timezone.now()
        or not usuario.is_active
        or (cliente is not None and not cliente.activo)
    ):
        return None
    return token


class BearerAuthentication(BaseAuthentication):
    """Any Bearer token; `request.auth` is the TokenUsuario, the OAuth2 AccessToken, or None
    for a JWT (verified by signature, nothing stored), so permissions (scopes) and logout can
    tell which kind came."""

    def authenticate(self, request):
        raw = bearer(request)
        if not raw:
            return None
        if parece_token_usuario(raw):
            token = token_autenticar(raw)
            if token is None:
                raise exceptions.AuthenticationFailed("Token de usuario inválido o vencido.")
            return token.usuario, token
        if parece_jwt(raw):
            return jwt_autenticar(raw), None
        token = token_oauth_autenticar(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Token inválido o vencido.")
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = BearerAuthentication
    name = "Bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                'A user token "<id>|<secret>", a JWT from /v2/auth/gettoken, or an OAuth2 '
                "access token."
            ),
        }
