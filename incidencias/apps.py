from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidenciasConfig(AppConfig):
    name = "incidencias"
    verbose_name = _("Tickets")

    def ready(self):
        from sso import avisos

        from .notificaciones import CanalCorreo, avisar_personas, canal_registrar

        canal_registrar(CanalCorreo())
        avisos.registrar(avisar_personas)
