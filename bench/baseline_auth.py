"""The baseline for Bearer-authenticated GET /api/user: only the SQL each kind of token needs.

A DRF view behind the same middleware as the portal, with no authentication class, no ORM and
no serializers. The Bearer is told apart by its form, as `sso.api.bearer` does, and checked as
strictly, with one statement through a plain psycopg cursor on a connection kept per thread
(bench/baseline.py's; autocommit, prepared on the server once repeated):

- user token `"<id>|<secret>"`: the token by id joined to its user (live, unexpired, user
  active); the SHA-256 of the secret compared with the stored one in constant time;
- OAuth2 access token: the token by `token_checksum` (its SHA-256) joined to its user and
  client (unexpired, user active, client active); a scope of `profile`, `read` or `*` needed;
- JWT: PyJWT's RS256 verification with the portal's key, `kid`, issuer, audience and required
  claims, then the user by primary key (active, token not older than `jwt_valido_desde`).

The body needs the user's second factor, groups and permissions as well: the statement reads
them in subqueries of the same SELECT. The answer is the portal's envelope D with the same
`data` (user with `two_factor_enabled`, roles, permissions).
"""

import hashlib
import hmac
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .baseline import _connection

# The user's columns for the body, then whether a confirmed second factor exists, the names of
# their groups and the codenames of their permissions (all of them for a superuser).
_USER_COLUMNS = """
       u.id, u.username, u.nombre, u.first_name, u.last_name, u.email, u.phone, u.movil,
       u.is_active,
       EXISTS (SELECT 1 FROM sso_dispositivototp d WHERE d.user_id = u.id AND d.confirmed)
       OR EXISTS (SELECT 1 FROM sso_dispositivocodigo d WHERE d.user_id = u.id AND d.confirmed),
       ARRAY (SELECT g.name FROM sso_usuario_groups ug JOIN auth_group g ON g.id = ug.group_id
               WHERE ug.usuario_id = u.id),
       ARRAY (SELECT p.codename FROM auth_permission p
               WHERE u.is_superuser
                  OR p.id IN (SELECT up.permission_id FROM sso_usuario_user_permissions up
                               WHERE up.usuario_id = u.id)
                  OR p.id IN (SELECT gp.permission_id
                                FROM auth_group_permissions gp
                                JOIN sso_usuario_groups ug ON ug.group_id = gp.group_id
                               WHERE ug.usuario_id = u.id))
"""

SELECT_USER_TOKEN = f"""
SELECT t.secreto_hash, {_USER_COLUMNS}
  FROM sso_tokenusuario t JOIN sso_usuario u ON u.id = t.usuario_id
 WHERE t.id = %s AND t.revocado IS NULL AND t.expira > now() AND u.is_active
"""  # noqa: S608 - constant text, no input

SELECT_OAUTH_TOKEN = f"""
SELECT a.token_checksum, a.scope, {_USER_COLUMNS}
  FROM oauth2_provider_accesstoken a
  JOIN sso_usuario u ON u.id = a.user_id
  LEFT JOIN sso_aplicacionoauth c ON c.id = a.application_id
 WHERE a.token_checksum = %s AND a.expires > now() AND u.is_active
   AND (c.id IS NULL OR c.activo)
"""  # noqa: S608 - constant text, no input

SELECT_USER = f"""
SELECT u.jwt_valido_desde, {_USER_COLUMNS}
  FROM sso_usuario u
 WHERE u.id = %s AND u.is_active
"""  # noqa: S608 - constant text, no input

_SCOPES = {"*", "profile", "read"}  # requiere_scope("profile", "read")


def _refused(status: int, message: str) -> Response:
    return Response({"success": False, "message": message}, status=status)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _key():
    """The portal's signing key's public half and its RFC 7638 `kid`, loaded once."""
    from sso.jwt import kid_de

    private = serialization.load_pem_private_key(
        settings.OIDC_RSA_PRIVATE_KEY.encode("ascii"), password=None
    )
    public = private.public_key()
    return public, kid_de(public)


def _body(row) -> dict:
    (pk, login, nombre, first, last, email, phone, movil, active, dosfa, roles, permisos) = row
    full = f"{first} {last}".strip()
    return {
        "success": True,
        "message": "",
        "data": {
            "user": {
                "id": pk,
                "name": nombre or full or login,
                "email": email or None,
                "phone": phone or movil or None,
                "avatar": None,
                "is_active": active,
                "two_factor_enabled": dosfa,
            },
            "roles": sorted(roles),
            "permissions": sorted(set(permisos)),
        },
    }


class BaselineUsuarioView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        raw = header[1] if len(header) == 2 and header[0].lower() == "bearer" else ""
        if not raw:
            return _refused(401, "No autenticado.")
        ident, sep, secret = raw.partition("|")
        if sep and ident.isascii() and ident.isdigit() and secret:
            return self.user_token(ident, secret)
        parts = raw.split(".")
        if len(parts) == 3 and all(parts[:2]) and raw.startswith("eyJ"):
            return self.jwt(raw)
        return self.oauth_token(raw)

    def user_token(self, ident: str, secret: str) -> Response:
        if len(ident) > 18 or len(secret) > 200:
            return _refused(401, "Token de usuario inválido o vencido.")
        with _connection().cursor() as cursor:
            cursor.execute(SELECT_USER_TOKEN, (int(ident),))
            row = cursor.fetchone()
        if row is None or not hmac.compare_digest(_sha256(secret), row[0]):
            return _refused(401, "Token de usuario inválido o vencido.")
        return Response(_body(row[1:]))

    def oauth_token(self, raw: str) -> Response:
        if len(raw) > 255:
            return _refused(401, "Token inválido o vencido.")
        checksum = _sha256(raw)
        with _connection().cursor() as cursor:
            cursor.execute(SELECT_OAUTH_TOKEN, (checksum,))
            row = cursor.fetchone()
        if row is None or not hmac.compare_digest(checksum, row[0]):
            return _refused(401, "Token inválido o vencido.")
        if not set(row[1].split()) & _SCOPES:
            return _refused(403, "El token no tiene el permiso (scope) que pide este recurso.")
        return Response(_body(row[2:]))

    def jwt(self, raw: str) -> Response:
        public, kid = _key()
        try:
            header = jwt.get_unverified_header(raw)
            if header.get("alg") != "RS256" or not hmac.compare_digest(str(header.get("kid")), kid):
                return _refused(401, "Token inválido.")
            claims = jwt.decode(
                raw,
                public,
                algorithms=["RS256"],
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return _refused(401, "Token inválido.")
        sub, iat = claims["sub"], claims["iat"]
        if not (isinstance(sub, str) and sub.isdigit() and 0 < int(sub) < 2**63):
            return _refused(401, "Token inválido.")
        if not isinstance(iat, int | float):
            return _refused(401, "Token inválido.")
        with _connection().cursor() as cursor:
            cursor.execute(SELECT_USER, (int(sub),))
            row = cursor.fetchone()
        if row is None:
            return _refused(401, "Usuario inactivo o inexistente.")
        if row[0] is not None and iat < int(row[0].timestamp()):
            return _refused(401, "Token revocado.")
        return Response(_body(row[1:]))
