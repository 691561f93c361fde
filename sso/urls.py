"""URLs of the authorization server.

`protocolo` keeps django-oauth-toolkit's URL names (its discovery documents reverse them) under
the paths of seed 003; `urlpatterns` are the portal's own pages under /oauth/.
"""

from django.urls import path
from oauth2_provider import views as dot

from . import views

protocolo = [
    path("oauth/authorize", views.AutorizarView.as_view(), name="authorize"),
    path("oauth/token", dot.TokenView.as_view(), name="token"),
    path("oauth/revoke", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth/introspect", views.introspeccion, name="introspect"),
    path("oauth/userinfo", dot.UserInfoView.as_view(), name="user-info"),
    path("oauth/jwks", dot.JwksInfoView.as_view(), name="jwks-info"),
    path(
        ".well-known/openid-configuration",
        dot.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/oauth-authorization-server",
        dot.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
]

app_name = "sso"
urlpatterns = [
    path("login", views.entrar, name="login"),
    path("login/2fa", views.entrar_dosfa, name="login-2fa"),
    path("clientes/", views.clientes, name="clientes"),
    path("clientes/nuevo", views.cliente_nuevo, name="cliente-nuevo"),
    path("clientes/<int:pk>/", views.cliente, name="cliente"),
    path("clientes/<int:pk>/rotar", views.cliente_rotar, name="cliente-rotar"),
    path("clientes/<int:pk>/desactivar", views.cliente_desactivar, name="cliente-desactivar"),
    path("clientes/<int:pk>/activar", views.cliente_activar, name="cliente-activar"),
]
