"""The project's URLs plus the stand-in pages of bench/pages_views.py; never in production."""

from django.urls import path

from incidencias import urls as project_urls

from .pages_views import cola_vista, ticket_vista

urlpatterns = [
    *project_urls.urlpatterns,
    path("bench/pages/tickets/", cola_vista, name="bench-pages-cola"),
    path("bench/pages/tickets/<int:numero>/", ticket_vista, name="bench-pages-ticket"),
]

handler404 = project_urls.handler404
handler500 = project_urls.handler500
