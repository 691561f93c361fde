from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CredencialesConfig(AppConfig):
    name = "credenciales"
    verbose_name = _("Credential vault")
