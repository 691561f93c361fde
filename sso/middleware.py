"""The staff 2FA requirement (TWO_FACTOR_STAFF_REQUIRED).

Signed-in staff whose session was not verified with a second factor are sent to the
verification page, or to enrolment when they have no device yet; the admin and every staff
page are covered. Installed after django-otp's `OTPMiddleware`, which tells whether the session
is verified. APIs (Bearer tokens, no session), static files, the 2FA pages themselves and the
sign-in page of the OAuth2 flow with its 2FA step are left alone.
"""

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from .dosfa import dosfa_activo

# The sign-in page of the OAuth2 flow (and its 2FA step) verifies the second factor itself.
_LIBRES = ("/api/", "/healthz", "/i18n/", "/v2/", "/.well-known/", "/oauth/login")


class DosfaStaffMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.TWO_FACTOR_STAFF_REQUIRED:
            respuesta = self._exigir(request)
            if respuesta is not None:
                return respuesta
        return self.get_response(request)

    def _exigir(self, request):
        path = request.path
        libres = (
            *_LIBRES,
            settings.STATIC_URL or "/static/",
            reverse("dosfa-enrolar"),
            reverse("admin:logout"),
        )
        if path.startswith(libres):
            return None
        usuario = getattr(request, "user", None)
        if usuario is None or not usuario.is_authenticated or not usuario.is_staff:
            return None
        if usuario.is_verified():
            return None
        destino = "dosfa-verificar" if dosfa_activo(usuario=usuario) else "dosfa-enrolar"
        return redirect(f"{reverse(destino)}?{urlencode({'next': request.get_full_path()})}")
