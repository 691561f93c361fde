"""Self-service accounts (`POST /api/auth/register`): open or closed by REGISTRATION_OPEN.

A new account is always a customer (`tipo_usuario` cliente, never staff or superuser) in the
REGISTRATION_GROUP group, which is given the `view-profile` and `edit-profile` permissions.
"""

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.views.decorators.debug import sensitive_variables

from .acceso import telefono_normalizar
from .models import Usuario

MENSAJE_EMAIL_USADO = "El email ya está registrado."
MENSAJE_TELEFONO_USADO = "El teléfono ya está registrado."
MENSAJE_NO_COINCIDEN = "Las contraseñas no coinciden."
MENSAJE_EMAIL_O_TELEFONO = "Indique un email o un teléfono."


class RegistroCerrado(Exception):
    """REGISTRATION_OPEN is off."""


def grupo_registro() -> Group:
    grupo, creado = Group.objects.get_or_create(name=settings.REGISTRATION_GROUP)
    if creado:
        grupo.permissions.set(
            Permission.objects.filter(
                content_type__app_label="sso", codename__in=["view-profile", "edit-profile"]
            )
        )
    return grupo


@sensitive_variables("password", "password_confirmation")
def usuario_registrar(
    *, name: str, email: str, phone: str, password: str, password_confirmation: str
) -> Usuario:
    """A new customer account; ValidationError with field errors, RegistroCerrado."""
    if not settings.REGISTRATION_OPEN:
        raise RegistroCerrado()
    email = (email or "").strip()
    phone = telefono_normalizar(phone or "")
    errores: dict[str, list[str]] = {}
    if not email and not phone:
        errores["email"] = [MENSAJE_EMAIL_O_TELEFONO]
    if (
        email
        and Usuario.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists()
    ):
        errores["email"] = [MENSAJE_EMAIL_USADO]
    if (
        phone
        and Usuario.objects.filter(Q(phone=phone) | Q(movil=phone) | Q(username=phone)).exists()
    ):
        errores["phone"] = [MENSAJE_TELEFONO_USADO]
    if password != password_confirmation:
        errores["password_confirmation"] = [MENSAJE_NO_COINCIDEN]
    usuario = Usuario(
        username=(email.lower() or phone)[:150],
        email=email,
        phone=phone,
        nombre=name.strip(),
        tipo_usuario=Usuario.Tipo.CLIENTE,
        is_staff=False,
        is_superuser=False,
    )
    try:
        password_validation.validate_password(password, user=usuario)
    except ValidationError as exc:
        errores.setdefault("password", []).extend(exc.messages)
    if errores:
        raise ValidationError(errores)
    usuario.set_password(password)
    try:
        with transaction.atomic():
            usuario.save(force_insert=True)
            usuario.groups.add(grupo_registro())
    except IntegrityError as exc:  # a concurrent registration took the name
        campo, mensaje = (
            ("email", MENSAJE_EMAIL_USADO) if email else ("phone", MENSAJE_TELEFONO_USADO)
        )
        raise ValidationError({campo: [mensaje]}) from exc
    return usuario
