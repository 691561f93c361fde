from django.urls import path

from . import api

urlpatterns = [
    path("credenciales", api.CredencialesView.as_view(), name="integra-credenciales"),
    path("credenciales/tipos", api.TiposView.as_view(), name="integra-tipos"),
    path("credenciales/tipo", api.TipoCrearView.as_view(), name="integra-tipo-crear"),
    path("credenciales/tipo/<int:id>", api.TipoView.as_view(), name="integra-tipo"),
    path("credenciales/<int:id>", api.CredencialView.as_view(), name="integra-credencial"),
    path(
        "credenciales/<int:id>/revelar",
        api.RevelarView.as_view(),
        name="integra-credencial-revelar",
    ),
]
