from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = _("Identity")

    def ready(self):
        from . import permisos, sesiones

        sesiones.conectar_senales()
        permisos.conectar_senales()
