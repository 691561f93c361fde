from django.urls import path

from . import api

urlpatterns = [
    path("credenciales", api.CredencialesView.as_view(), name="integra-credenciales"),
    path("credenciales/tipos", api.TiposView.as_view(), name="integra-tipos"),
    path("credenciales/tipo", api.TipoCrearView.as_view(), name="integra-tipo-crear"),
    path("credenciales/tipo/<int:pk>", api.TipoView.as_view(), name="integra-tipo"),
    path("credenciales/<int:pk>", api.CredencialView.as_view(), name="integra-credencial"),
    path(
        "credenciales/<int:pk>/revelar",
        api.RevelarView.as_view(),
        name="integra-credencial-revelar",
    ),
]
