"""Sign-in with an email or a phone number and a password: the authorization flow's login page.

The same lockout as SSO/access (`sso.acceso`'s counters, per account and per client IP) is
checked before any hasher runs, and an unknown login costs the same hashing as a wrong password.
Raises `acceso.AccesoBloqueado` or `acceso.CredencialesInvalidas`; the second factor, when the
user has one, is the caller's next step.
"""

import re

from django.contrib.auth.hashers import check_password
from django.db.models import Q
from django.views.decorators.debug import sensitive_variables

from .acceso import (
    AccesoBloqueado,
    CredencialesInvalidas,
    _burn_hasher,
    intentos_bloqueo,
    intentos_clave_cuenta,
    intentos_clave_ip,
    intentos_fallo,
    intentos_reiniciar,
)
from .models import Usuario

_SEPARADORES = re.compile(r"[\s().-]")


def usuario_por_login(*, login: str) -> Usuario | None:
    """The only user with that email (any case) or phone number (spaces, dots, dashes and
    brackets ignored); None when none or several match."""
    login = login.strip()
    if not login:
        return None
    if "@" in login:
        filtro = Q(email__iexact=login)
    else:
        telefono = _SEPARADORES.sub("", login)
        if not telefono.lstrip("+").isdigit():
            return None
        filtro = Q(phone=telefono) | Q(movil=telefono)
    candidatos = list(Usuario.objects.filter(filtro)[:2])
    return candidatos[0] if len(candidatos) == 1 else None


@sensitive_variables("password")
def entrada_verificar(*, login: str, password: str, ip: str | None) -> Usuario:
    """The active user with that login and password, or an AccesoError."""
    usuario = usuario_por_login(login=login)
    clave_cuenta = intentos_clave_cuenta(identificador=login, usuario=usuario)
    claves = [clave_cuenta, intentos_clave_ip(ip=ip)]
    espera = intentos_bloqueo(claves=claves)  # before any hasher runs
    if espera:
        raise AccesoBloqueado(espera)
    if usuario is None or not usuario.has_usable_password():
        _burn_hasher(password)
        motivo = "unknown login" if usuario is None else "no usable password"
    elif not usuario.is_active:
        check_password(password, usuario.password)  # same cost; no hash upgrade for them
        motivo = "inactive user"
    elif usuario.check_password(password):
        intentos_reiniciar(clave=clave_cuenta)
        return usuario
    else:
        motivo = "wrong password"
    intentos_fallo(claves=claves, motivo=motivo)
    raise CredencialesInvalidas()
