"""The staff 2FA requirement (TWO_FACTOR_STAFF_REQUIRED).

Signed-in staff whose session was not verified with a second factor are sent to the
verification page, or to enrolment when they have no device yet; the admin and every staff
page are covered. Installed after django-otp's `OTPMiddleware`, which tells whether the session
is verified. APIs (Bearer tokens, no session), static files, the 2FA pages themselves and the
sign-in page of the OAuth2 flow with its 2FA step are left alone.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

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


class SesionInactivaMiddleware:
    """Ends a signed-in session idle for longer than SESSION_IDLE_MINUTES (0: never).

    The last activity is kept in the session and written at most once a minute, so a busy page
    does not write its session on every request. Requests without a session (APIs with Bearer
    tokens) are left alone. An htmx request is told to load the sign-in page (`HX-Redirect`)
    instead of having it swapped into a fragment.
    """

    CLAVE = "_ultima_actividad"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        minutos = settings.SESSION_IDLE_MINUTES
        usuario = getattr(request, "user", None)
        if minutos and usuario is not None and usuario.is_authenticated:
            ahora = int(time.time())
            ultima = request.session.get(self.CLAVE)
            if isinstance(ultima, int) and ahora - ultima > minutos * 60:
                logout(request)
                return self._a_entrar(request)
            if not isinstance(ultima, int) or ahora - ultima >= 60:
                request.session[self.CLAVE] = ahora
        return self.get_response(request)

    def _a_entrar(self, request):
        destino = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
        if request.headers.get("HX-Request"):
            respuesta = HttpResponse(status=204)
            respuesta["HX-Redirect"] = destino
            return respuesta
        messages.info(request, _("Your session expired after a while without activity."))
        return redirect(destino)
