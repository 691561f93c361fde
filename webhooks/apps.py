from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Synology Chat")

    def ready(self):
        try:
            from incidencias.notificaciones import canal_registrar
        except ImportError:  # the outbox is not there yet
            return
        from .canal import NotificadorSynology

        canal_registrar(NotificadorSynology())
