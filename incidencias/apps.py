from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidenciasConfig(AppConfig):
    name = "incidencias"
    verbose_name = _("Tickets")

    def ready(self):
        from .notificaciones import CanalCorreo, canal_registrar

        canal_registrar(CanalCorreo())
