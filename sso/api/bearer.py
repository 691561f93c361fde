"""`Authorization: Bearer` for user tokens `"<id>|<secret>"`.

The same header carries JWTs and OAuth2 access tokens elsewhere; this class recognises only
the user-token form and leaves anything else to the next authentication class.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

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


class TokenUsuarioScheme(OpenApiAuthenticationExtension):
    target_class = TokenUsuarioAuthentication
    name = "TokenUsuario"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": 'A user token "<id>|<secret>" from SSO/access or the login API.',
        }
