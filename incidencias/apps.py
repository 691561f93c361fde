from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidenciasConfig(AppConfig):
    name = "incidencias"
    verbose_name = _("Tickets")
