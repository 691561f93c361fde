from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = _("Identity")

    def ready(self):
        from .sesiones import conectar_senales

        conectar_senales()
