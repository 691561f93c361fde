"""`Authorization: Bearer` with any of the three kinds of token, told apart by their form:

- a user token `"<id>|<secret>"` (SSO/access, the login API): `token_autenticar`;
- a JWT (three base64url parts, /v2/auth/gettoken): `sso.jwt.jwt_autenticar`;
- anything else: an OAuth2 access token, looked up by its SHA-256 (one query, with its user
  and client).

`BearerAuthentication` takes all three; `TokenUsuarioAuthentication` only the first.
"""

import hashlib
import re

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from ..tokens import parece_token_usuario, token_autenticar

try:  # the JWT kind (sso/jwt.py); until it exists, JWT-shaped tokens are refused
    from ..jwt import jwt_autenticar
except ImportError:  # pragma: no cover - removed once sso.jwt is there
    jwt_autenticar = None

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def bearer(request) -> str:
    """The Bearer value of the request, or ""."""
    header = get_authorization_header(request).split()
    if len(header) != 2 or header[0].lower() != b"bearer":
        return ""
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        return ""


class TokenUsuarioAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = bearer(request)
        if not raw or not parece_token_usuario(raw):
            return None
        token = token_autenticar(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Token de usuario inválido o vencido.")
        return token.usuario, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def parece_jwt(raw: str) -> bool:
    return raw.startswith("eyJ") and bool(_JWT.match(raw))


def token_oauth_autenticar(raw: str):
    """The live OAuth2 access token `raw` names (with its user and client), or None."""
    if len(raw) > 255:
        return None
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    token = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=checksum)
        .first()
    )
    if (
        token is None
        or token.expires <= timezone.now()
        or token.user is None
        or not token.user.is_active
        or (token.application is not None and not token.application.activo)
    ):
        return None
    return token


class BearerAuthentication(BaseAuthentication):
    """Any Bearer token; `request.auth` is the TokenUsuario, the OAuth2 AccessToken or the
    JWT's claims, so permissions (scopes) can tell which kind came."""

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
            if jwt_autenticar is None:
                raise exceptions.AuthenticationFailed("Token inválido o vencido.")
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


class TokenUsuarioScheme(OpenApiAuthenticationExtension):
    target_class = TokenUsuarioAuthentication
    name = "TokenUsuario"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": 'A user token "<id>|<secret>" from SSO/access or the login API.',
        }
