"""OAuth2 scopes on API endpoints.

A request authenticated with an OAuth2 access token may do only what its scopes allow: an
endpoint lists the scopes that let it in (any one of them is enough, and `*` is full access).
User tokens and JWTs are the user's own sign-in, not a delegation, so scopes do not limit them.

    permission_classes = [IsAuthenticated, requiere_scope("profile", "read")]
"""

from oauth2_provider.models import AbstractAccessToken
from rest_framework.permissions import BasePermission

SCOPES = ("*", "read", "write", "profile", "email", "sessions")


def scopes_de(request) -> set[str] | None:
    """The scopes of the request's OAuth2 token, or None when it did not come with one."""
    if isinstance(request.auth, AbstractAccessToken):
        return set(request.auth.scope.split())
    return None


def requiere_scope(*alternativas: str) -> type[BasePermission]:
    """A permission class letting in OAuth2 tokens with `*` or any of `alternativas`."""
    desconocidos = set(alternativas) - set(SCOPES)
    if not alternativas or desconocidos:
        raise ValueError(f"unknown scopes: {sorted(desconocidos)}")
    aceptados = {"*", *alternativas}

    class TieneScope(BasePermission):
        message = "El token no tiene el permiso (scope) que pide este recurso."

        def has_permission(self, request, view):
            scopes = scopes_de(request)
            return scopes is None or bool(scopes & aceptados)

    TieneScope.__name__ = f"TieneScope_{'_'.join(sorted(alternativas))}"
    return TieneScope
