"""The project's URLs plus the baseline view; never part of the production URLconf."""

from django.urls import path

from incidencias import urls as project_urls

from .baseline import BaselineUsuarioInternoView

# Appended last, so the baseline pays for resolving past every project pattern.
urlpatterns = [
    *project_urls.urlpatterns,
    path("bench/baseline", BaselineUsuarioInternoView.as_view(), name="bench-baseline"),
]

handler404 = project_urls.handler404
handler500 = project_urls.handler500
