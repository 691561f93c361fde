"""Where the Synology Chat tokens of departments' channels live."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from sso.fields import EncryptedTextField
from sso.models import Departamento


class CanalSynology(models.Model):
    """A department's channel in Synology Chat, reached through its incoming webhook."""

    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.CASCADE,
        related_name="canales_synology",
        verbose_name=_("department"),
    )
    nombre = models.CharField(
        _("name"), max_length=120, help_text=_("The channel's name in Synology Chat.")
    )
    token = EncryptedTextField(
        _("incoming webhook token"),
        help_text=_(
            "Synology Chat > Integration > Incoming Webhooks: the value of `token` in the "
            "webhook URL, without quotes."
        ),
    )
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("Synology Chat channel")
        verbose_name_plural = _("Synology Chat channels")
        ordering = ["departamento__nombre", "nombre"]
        constraints = [
            models.UniqueConstraint(
                fields=["departamento"],
                condition=models.Q(activo=True),
                name="canal_synology_activo_unico",
                violation_error_message=_("This department already has an active channel."),
            )
        ]

    def __str__(self):
        return f"{self.departamento} · {self.nombre}"
