from csp.decorators import csp_update
from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from sso.api.acceso import AccesoView, RefreshUserTokenView
from sso.api.adi import GenerateTokenView, SetTokenView, ValidarTokenView
from sso.api.auth import (
    LoginView,
    LogoutView,
    PerfilView,
    ReenviarDosfaView,
    RegistrarSesionAppView,
    RegistroView,
    SesionAppView,
    SesionesAppView,
    UsuarioView,
    VerificarDosfaView,
)
from sso.api.gettoken import GetTokenView
from sso.api.password import PasswordForgotView, PasswordResetView
from sso.api.usuarios import UsuarioInternoGetView
from sso.urls import protocolo as oauth_protocolo
from sso.views_cuenta import cambiar_clave, salir
from sso.views_dosfa import dosfa_enrolar, dosfa_verificar_sesion
from webhooks.api import ConfigurarIdUsuarioView

from . import views
from .api import CorreoSaveView, GetConfigCorreosView
from .api_tickets import (
    AdjuntoView,
    AsignarView,
    EstadoView,
    FusionarView,
    NotasView,
    PrioridadView,
    RespuestasView,
    TicketsView,
    TicketView,
    TransferirView,
)
from .errors import not_found
from .health import healthz

admin.site.site_header = _("Incident attention")
admin.site.site_title = _("Incident attention")
admin.site.index_title = _("Configuration")

# Swagger UI sets inline styles; its script is a static file (the split view), so only styles
# are relaxed, on this page alone.
docs = csp_update({"style-src": ["'unsafe-inline'"]})(
    SpectacularSwaggerSplitView.as_view(url_name="schema")
)


def favicon(request):
    """Browsers ask for /favicon.ico on their own; the icon is a static file."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


api_consumo = [
    path("SSO/access", AccesoView.as_view(), name="sso-access"),
    path("SSO/refreshUserToken", RefreshUserTokenView.as_view(), name="sso-refresh-user-token"),
    path("UsuarioInterno/get", UsuarioInternoGetView.as_view(), name="usuario-interno-get"),
    path("SSO/ADI/setToken", SetTokenView.as_view(), name="sso-adi-set-token"),
    path("SSO/ADI/generateToken", GenerateTokenView.as_view(), name="sso-adi-generate-token"),
    path("SSO/ADI/Token", ValidarTokenView.as_view(), name="sso-adi-token"),
    path("correo/save", CorreoSaveView.as_view(), name="correo-save"),
    path("correo/getConfigCorreos", GetConfigCorreosView.as_view(), name="correo-get-config"),
    path("SSO/password/forgot", PasswordForgotView.as_view(), name="sso-password-forgot"),
    path("SSO/password/reset", PasswordResetView.as_view(), name="sso-password-reset"),
    path(
        "Synology/BotAsistencia/configurarIdUsuario",
        ConfigurarIdUsuarioView.as_view(),
        name="synology-bot-configurar-id-usuario",
    ),
]
# Auth (seed 003, envelope D).
api_auth = [
    path("auth/login", LoginView.as_view(), name="auth-login"),
    path("auth/2fa/verify", VerificarDosfaView.as_view(), name="auth-2fa-verify"),
    path("auth/2fa/resend", ReenviarDosfaView.as_view(), name="auth-2fa-resend"),
    path("auth/register", RegistroView.as_view(), name="auth-register"),
    path("auth/logout", LogoutView.as_view(), name="auth-logout"),
    path("auth/profile", PerfilView.as_view(), name="auth-profile"),
    path("user", UsuarioView.as_view(), name="auth-user"),
    path("app-sessions/register", RegistrarSesionAppView.as_view(), name="app-sessions-register"),
    path("app-sessions", SesionesAppView.as_view(), name="app-sessions"),
    path("app-sessions/<str:id>", SesionAppView.as_view(), name="app-session"),
]
# The agents' portal (staff pages).
paginas = [
    path("", views.tablero, name="tablero"),
    path("tickets/", views.cola, name="cola"),
    path("tickets/lote", views.cola_lote, name="cola-lote"),
    path("tickets/filtros", views.filtro_guardar, name="cola-filtro-guardar"),
    path("tickets/filtros/<int:filtro_id>/borrar", views.filtro_borrar, name="cola-filtro-borrar"),
    path("tickets/nuevo", views.ticket_nuevo, name="ticket-nuevo"),
]
# Tickets API v1 (plain REST, RFC 7807 errors).
api_v1 = [
    path("tickets", TicketsView.as_view(), name="api-v1-tickets"),
    path("tickets/<int:numero>", TicketView.as_view(), name="api-v1-ticket"),
    path("tickets/<int:numero>/respuestas", RespuestasView.as_view(), name="api-v1-respuestas"),
    path("tickets/<int:numero>/notas", NotasView.as_view(), name="api-v1-notas"),
    path("tickets/<int:numero>/asignar", AsignarView.as_view(), name="api-v1-asignar"),
    path("tickets/<int:numero>/estado", EstadoView.as_view(), name="api-v1-estado"),
    path("tickets/<int:numero>/prioridad", PrioridadView.as_view(), name="api-v1-prioridad"),
    path("tickets/<int:numero>/transferir", TransferirView.as_view(), name="api-v1-transferir"),
    path("tickets/<int:numero>/fusionar", FusionarView.as_view(), name="api-v1-fusionar"),
    path("adjuntos/<int:id>", AdjuntoView.as_view(), name="api-v1-adjunto"),
]
api_fallback = [
    # Unknown API paths answer in their family's envelope, in DEBUG too.
    re_path(r"^api/", not_found),
    re_path(r"^v2/", not_found),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", docs, name="docs"),
    path("api/", include(api_consumo)),
    path("v2/auth/gettoken", GetTokenView.as_view(), name="auth-gettoken"),
    path("api/", include(api_auth)),
    path("api/integra/", include("credenciales.urls")),
    path("tickets/<int:numero>/", include("incidencias.urls_ticket")),
    path("credenciales/", include("credenciales.urls_paginas")),
    path("cuenta/salir", salir, name="cuenta-salir"),
    path("cuenta/clave", cambiar_clave, name="cuenta-clave"),
    path("api/v1/", include(api_v1)),
    path("cuenta/2fa/", dosfa_enrolar, name="dosfa-enrolar"),
    path("cuenta/2fa/verificar/", dosfa_verificar_sesion, name="dosfa-verificar"),
    path("", include((oauth_protocolo, "oauth2_provider"))),
    path("oauth/", include("sso.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    *paginas,
    *api_fallback,
]

handler400 = "incidencias.errors.bad_request"
handler404 = "incidencias.errors.not_found"
handler500 = "incidencias.errors.server_error"
