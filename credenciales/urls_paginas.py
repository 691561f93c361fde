"""The vault's staff pages, mounted at /credenciales/ (namespace `credenciales`)."""

from django.urls import path

from . import views

app_name = "credenciales"
urlpatterns = [
    path("", views.lista, name="lista"),
    path("nueva", views.nueva, name="nueva"),
    path("informe", views.informe, name="informe"),
    path("accesos/exportar", views.exportar, name="exportar"),
    path("<int:pk>/", views.detalle, name="detalle"),
    path("<int:pk>/editar", views.editar, name="editar"),
    path("<int:pk>/borrar", views.borrar, name="borrar"),
    path("<int:pk>/revelar", views.revelar, name="revelar"),
    path("<int:pk>/copiar", views.copiar, name="copiar"),
    path("<int:pk>/historial", views.historial, name="historial"),
    path("<int:pk>/accesos", views.accesos, name="accesos"),
]
