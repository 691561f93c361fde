"""Devices where a user signs in with a PIN (`SSO/access` with `modo: pin`)."""

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .models import Dispositivo, Usuario

PIN_MIN = 4


@sensitive_variables("pin")
def dispositivo_registrar(*, usuario: Usuario, nombre: str, pin: str) -> Dispositivo:
    """Register a device with its PIN (stored hashed, like a password)."""
    if not pin.isdigit() or len(pin) < PIN_MIN or len(pin) > 12:
        raise ValidationError({"pin": f"El PIN debe tener entre {PIN_MIN} y 12 dígitos."})
    return Dispositivo.objects.create(usuario=usuario, nombre=nombre, pin_hash=make_password(pin))


@sensitive_variables("pin")
def dispositivo_cambiar_pin(*, dispositivo: Dispositivo, pin: str) -> None:
    if not pin.isdigit() or len(pin) < PIN_MIN or len(pin) > 12:
        raise ValidationError({"pin": f"El PIN debe tener entre {PIN_MIN} y 12 dígitos."})
    dispositivo.pin_hash = make_password(pin)
    dispositivo.fallos_pin = 0
    dispositivo.bloqueado = None
    dispositivo.save(update_fields=["pin_hash", "fallos_pin", "bloqueado"])


def dispositivo_revocar(*, dispositivo: Dispositivo) -> None:
    """The device can no longer sign in, and its tokens die with it."""
    from .tokens import token_revocar

    dispositivo.activo = False
    dispositivo.revocado = timezone.now()
    dispositivo.save(update_fields=["activo", "revocado"])
    for token in dispositivo.tokens.filter(revocado__isnull=True):
        token_revocar(token=token)


@sensitive_variables("pin")
@transaction.atomic
def dispositivo_verificar_pin(*, dispositivo: Dispositivo, pin: str) -> bool:
    """Check the PIN; after PIN_MAX_FALLOS wrong ones in a row the device is locked."""
    dispositivo = Dispositivo.objects.select_for_update().get(pk=dispositivo.pk)
    if not dispositivo.activo or dispositivo.bloqueado is not None:
        check_password(pin, dispositivo.pin_hash)  # same cost whatever the outcome
        return False
    if check_password(pin, dispositivo.pin_hash):
        if dispositivo.fallos_pin:
            dispositivo.fallos_pin = 0
            dispositivo.save(update_fields=["fallos_pin"])
        return True
    dispositivo.fallos_pin += 1
    campos = ["fallos_pin"]
    if dispositivo.fallos_pin >= settings.PIN_MAX_FALLOS:
        dispositivo.bloqueado = timezone.now()
        campos.append("bloqueado")
    dispositivo.save(update_fields=campos)
    return False
