from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Synology Chat")

    def ready(self):
        from incidencias.notificaciones import canal_registrar

        from .canal import NotificadorSynology

        canal_registrar(NotificadorSynology())
