"""The credential vault: shared accounts of a department (or one of its units), their secrets
encrypted at rest, every earlier secret kept, and every reveal audited.

Who sees what (`selectors.credenciales_para_usuario`): a user with `view_credencial` sees the
credentials of their own department that belong to no unit, plus those of the units they are a
member of (`MiembroUnidad`); the department's head (`Usuario.jefe`) sees every unit of it. Staff
with `ver_todas_credenciales` see every department's.
"""

from django.conf import settings
from django.core.validators import MinLengthValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from sso.fields import EncryptedTextField
from sso.models import Departamento, Unidad


class TipoCredencial(models.Model):
    nombre = models.CharField(_("name"), max_length=120, unique=True)

    class Meta:
        verbose_name = _("credential type")
        verbose_name_plural = _("credential types")
        ordering = ["nombre"]

    def __str__(self):
        return self.nombre


class Credencial(models.Model):
    tipo = models.ForeignKey(
        TipoCredencial,
        on_delete=models.PROTECT,
        related_name="credenciales",
        verbose_name=_("type"),
    )
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.PROTECT,
        related_name="credenciales",
        verbose_name=_("department"),
    )
    unidad = models.ForeignKey(
        Unidad,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credenciales",
        verbose_name=_("unit"),
    )
    usuario = models.CharField(_("account"), max_length=255, validators=[MinLengthValidator(1)])
    clave = EncryptedTextField(_("secret"))
    nota = models.TextField(_("note"), blank=True)
    url = models.URLField(_("URL"), max_length=500, blank=True)
    vence = models.DateField(_("expires"), null=True, blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    actualizado = models.DateTimeField(_("updated"), auto_now=True)
    creado_por = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    actualizado_por = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("credential")
        verbose_name_plural = _("credentials")
        ordering = ["departamento__nombre", "usuario", "pk"]
        permissions = [
            ("revelar_credencial", _("Can reveal a credential's secret")),
            ("ver_todas_credenciales", _("Can see every department's credentials (staff)")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(usuario=""), name="credencial_usuario_no_vacio"
            )
        ]

    def __str__(self):
        return f"{self.tipo} · {self.usuario}"


class HistorialClave(models.Model):
    """An earlier value of a credential's secret, kept (encrypted) when it changed."""

    credencial = models.ForeignKey(
        Credencial, on_delete=models.CASCADE, related_name="historial", verbose_name=_("credential")
    )
    clave = EncryptedTextField(_("secret"))
    cambiado_por = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("changed by"),
    )
    cambiado = models.DateTimeField(_("changed"), auto_now_add=True)

    class Meta:
        verbose_name = _("secret history entry")
        verbose_name_plural = _("secret history")
        ordering = ["-cambiado", "-pk"]

    def __str__(self):
        return f"{self.credencial_id} @ {self.cambiado:%Y-%m-%d %H:%M}"


class AccesoCredencial(models.Model):
    """One audited action on a credential."""

    class Accion(models.TextChoices):
        REVELAR = "revelar", _("reveal")
        COPIAR = "copiar", _("copy")
        EDITAR = "editar", _("edit")
        BORRAR = "borrar", _("delete")
        EXPORTAR = "exportar", _("export")
        CREAR = "crear", _("create")

    usuario = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # Kept after the credential is deleted: the audit outlives it.
    credencial = models.ForeignKey(
        Credencial,
        on_delete=models.SET_NULL,
        null=True,
        related_name="accesos",
        verbose_name=_("credential"),
    )
    credencial_descripcion = models.CharField(_("credential description"), max_length=400)
    accion = models.CharField(_("action"), max_length=10, choices=Accion.choices)
    momento = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    ip = models.GenericIPAddressField(_("client IP address"), null=True, blank=True)
    motivo = models.CharField(_("reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("credential access")
        verbose_name_plural = _("credential accesses")
        ordering = ["-momento", "-pk"]

    def __str__(self):
        return f"{self.accion} {self.credencial_descripcion}"


class MiembroUnidad(models.Model):
    """A user working in a unit: they see the credentials of that unit."""

    usuario = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="unidades_credenciales",
        verbose_name=_("user"),
    )
    unidad = models.ForeignKey(
        Unidad, on_delete=models.CASCADE, related_name="miembros", verbose_name=_("unit")
    )

    class Meta:
        verbose_name = _("unit member")
        verbose_name_plural = _("unit members")
        constraints = [
            models.UniqueConstraint(fields=["usuario", "unidad"], name="miembro_unidad_unico")
        ]

    def __str__(self):
        return f"{self.usuario_id} → {self.unidad_id}"
