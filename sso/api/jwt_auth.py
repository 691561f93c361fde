"""`Authorization: Bearer <JWT>` for the JWTs of /v2/auth/gettoken.

Like `TokenUsuarioAuthentication`, it recognises only its own form (a JWS) and leaves any
other Bearer value to the next class; a JWT that fails verification is a 401.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from ..jwt import jwt_autenticar, parece_jwt
from .bearer import bearer


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = bearer(request)
        if not raw or not parece_jwt(raw):
            return None
        return jwt_autenticar(raw), raw

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = JWTAuthentication
    name = "JWT"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from POST /v2/auth/gettoken (RS256, 2 hours).",
        }
