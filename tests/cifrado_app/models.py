from django.db import models

from sso.fields import EncryptedTextField


class Caja(models.Model):
    """A model with an encrypted column, for the field's tests."""

    nombre = models.CharField(max_length=50)
    secreto = EncryptedTextField(null=True, blank=True)
    otro = EncryptedTextField(null=True, blank=True)

    def __str__(self):
        return self.nombre
