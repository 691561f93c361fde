"""Product sign-in (`SSO/access`): by password (`modo: normal`) or by PIN on a registered
device (`modo: pin`), and the lockout that guards both.

Failed attempts are counted in the cache (Redis in production) per account and per client IP;
after SSO_MAX_FALLOS within SSO_VENTANA_MINUTOS the account or IP is refused *before* any
hasher runs, so the endpoint cannot be turned into a CPU sink. Every refusal costs one hasher
run, whether the user exists or not, so timing tells nothing about which accounts exist.
"""

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import connections, models, router
from django.views.decorators.debug import sensitive_variables

from incidencias.db import cursor_preparado, filas, sentencia

from .dispositivos import dispositivo_verificar_pin
from .models import Dispositivo, Sistema, TokenUsuario, Usuario
from .tokens import TokenRevocado, nombres_accesos, token_emitir, token_renovar

logger = logging.getLogger("incidencias.sso.acceso")

_PREFIJO = "sso:fallos"


class AccesoError(Exception):
    """A sign-in refused."""


class CredencialesInvalidas(AccesoError):
    """Wrong or unknown user, wrong password or PIN, inactive user, unusable device: the
    caller is told the same thing in every case."""


class SinAccesoAlSistema(AccesoError):
    """Right credentials, but the user may not enter this product."""


class AccesoBloqueado(AccesoError):
    """Too many failures for this account or IP; `espera` seconds until the window ends."""

    def __init__(self, espera: int):
        super().__init__(espera)
        self.espera = espera


@dataclass(frozen=True)
class Acceso:
    usuario: Usuario
    token: TokenUsuario
    token_plano: str  # "<id>|<secret>", shown once


# --- Lockout counters ------------------------------------------------------------------------


def _window_seconds() -> int:
    return max(1, round(timedelta(minutes=settings.SSO_VENTANA_MINUTOS).total_seconds()))


def intentos_clave_cuenta(*, identificador: str, usuario: Usuario | None) -> str:
    """The counter of an account: the user's id when it exists (so its login and its email
    share one counter), else a hash of what was typed (unknown names lock out the same way)."""
    if usuario is not None:
        return f"{_PREFIJO}:u:{usuario.pk}"
    digest = hashlib.sha256(identificador.strip().lower().encode("utf-8")).hexdigest()
    return f"{_PREFIJO}:n:{digest}"


def intentos_clave_ip(*, ip: str | None) -> str | None:
    return f"{_PREFIJO}:ip:{ip}" if ip else None


def _limite(clave: str) -> int:
    if clave.startswith(f"{_PREFIJO}:ip:"):
        return settings.SSO_MAX_FALLOS_IP
    return settings.SSO_MAX_FALLOS


def intentos_bloqueo(*, claves: list[str | None]) -> int:
    """Seconds left of the lockout of any of these counters, or 0 if none is locked."""
    return _intentos(claves=claves)[0]


def _intentos(*, claves: list[str | None]) -> tuple[int, dict[str, int]]:
    """The lockout's seconds left (0 if none is locked) and each counter's failures."""
    claves = [clave for clave in claves if clave]
    valores = cache.get_many([*claves, *(f"{clave}:hasta" for clave in claves)])
    ahora = time.time()
    espera = 0
    fallos = {}
    for clave in claves:
        fallos[clave] = valores.get(clave) or 0
        if fallos[clave] >= _limite(clave):
            hasta = valores.get(f"{clave}:hasta") or ahora + _window_seconds()
            espera = max(espera, int(hasta - ahora) + 1)
    return espera, fallos


def intentos_fallo(*, claves: list[str | None], motivo: str) -> None:
    """Count one failure on each counter; a counter lives one window from its first failure."""
    ventana = _window_seconds()
    for clave in (clave for clave in claves if clave):
        if cache.add(clave, 0, timeout=ventana):
            cache.set(f"{clave}:hasta", time.time() + ventana, timeout=ventana)
        try:
            cache.incr(clave)
        except ValueError:  # expired between add() and incr()
            cache.set(clave, 1, timeout=ventana)
            cache.set(f"{clave}:hasta", time.time() + ventana, timeout=ventana)
    logger.info("SSO access refused: %s", motivo)


def intentos_reiniciar(*, clave: str) -> None:
    cache.delete_many([clave, f"{clave}:hasta"])


# --- Sign-in -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of a random password with the default hasher, checked when there is no real one."""
    return make_password(secrets.token_urlsafe(16))


@sensitive_variables("secreto")
def _burn_hasher(secreto: str) -> None:
    """Run the hasher once for nothing: an unknown user costs what a wrong password costs."""
    check_password(secreto, _dummy_hash())


# The user by login or email, and whether they may enter a given system, in one statement (this
# runs on every sign-in). `UPPER(email) = UPPER(%s)` is what the ORM's `email__iexact` runs.
_BUSCAR_SQL = """
SELECT {columnas},
       EXISTS (SELECT 1 FROM {accesos} a WHERE a.{acceso_usuario} = u.id
                                          AND a.{acceso_sistema} = %s)
  FROM {usuarios} u
 WHERE u.username = %s OR UPPER(u.email) = UPPER(%s)
 LIMIT 3
"""


def _find_usuario(identificador: str, *, sistema: Sistema | None = None) -> Usuario | None:
    """The user whose login is `identificador`, else the only one with that email.

    With `sistema`, the user comes with `acceso_sistema`: whether they may enter it.
    """
    identificador = identificador.strip()
    if not identificador:
        return None
    connection = connections[router.db_for_read(Usuario)]
    lector = filas(connection, ("u", Usuario))
    sql = sentencia(
        connection,
        _BUSCAR_SQL,
        lambda q: {
            "columnas": lector.columnas,
            **nombres_accesos(q),
            "usuarios": q(Usuario._meta.db_table),
        },
    )
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, [sistema.pk if sistema else None, identificador, identificador])
        rows = cursor.fetchall()
    candidatos = []
    for row in rows:
        (usuario,) = lector.instancias(connection, row)
        if sistema is not None:
            usuario.acceso_sistema = bool(row[-1])
        candidatos.append(usuario)
    por_login = [u for u in candidatos if u.username == identificador]
    if por_login:
        return por_login[0]
    return candidatos[0] if len(candidatos) == 1 else None  # an email shared by two: no one


def sistema_por_alias(*, alias: str) -> Sistema | None:
    """The active system (product) with that alias: one hand-written SELECT, on every sign-in."""
    connection = connections[router.db_for_read(Sistema)]
    lector = filas(connection, ("s", Sistema))
    sql = sentencia(
        connection,
        "SELECT {columnas} FROM {sistemas} s WHERE s.alias = %s AND s.activo",
        lambda q: {"columnas": lector.columnas, "sistemas": q(Sistema._meta.db_table)},
    )
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, [alias])
        row = cursor.fetchone()
    return lector.instancias(connection, row)[0] if row else None


def _grant(
    *,
    usuario: Usuario,
    sistema: Sistema,
    ip: str | None,
    clave_cuenta: str,
    fallos_cuenta: int,
    dispositivo: Dispositivo | None = None,
) -> Acceso:
    """Let the user in: a token, the sign-in recorded, the account's failure count cleared
    (when it has one: a sign-in without earlier failures costs no cache write)."""
    acceso = getattr(usuario, "acceso_sistema", None)  # loaded with the user by _find_usuario
    if acceso is None:
        acceso = usuario.accesos_sistemas.filter(pk=sistema.pk).exists()
    if not acceso:
        raise SinAccesoAlSistema()
    if fallos_cuenta:
        intentos_reiniciar(clave=clave_cuenta)
    token, plano = token_emitir(
        usuario=usuario, sistema=sistema, dispositivo=dispositivo, ip=ip, al_entrar=True
    )
    return Acceso(usuario=usuario, token=token, token_plano=plano)


def _refuse_if_locked(*, claves: list[str | None]) -> dict[str, int]:
    """Raise AccesoBloqueado if any counter is locked; else each counter's failures so far."""
    espera, fallos = _intentos(claves=claves)
    if espera:
        logger.info("SSO access refused: locked out")
        raise AccesoBloqueado(espera)
    return fallos


@sensitive_variables("password")
def acceso_normal(*, sistema: Sistema, identificador: str, password: str, ip: str | None) -> Acceso:
    """Sign in with login or email and password; raises an AccesoError subclass on refusal."""
    usuario = _find_usuario(identificador, sistema=sistema)
    clave_cuenta = intentos_clave_cuenta(identificador=identificador, usuario=usuario)
    claves = [clave_cuenta, intentos_clave_ip(ip=ip)]
    fallos = _refuse_if_locked(claves=claves)  # before any hasher runs

    motivo = _password_rechazo(usuario=usuario, password=password)
    if motivo is None:
        return _grant(
            usuario=usuario,
            sistema=sistema,
            ip=ip,
            clave_cuenta=clave_cuenta,
            fallos_cuenta=fallos[clave_cuenta],
        )
    intentos_fallo(claves=claves, motivo=motivo)
    raise CredencialesInvalidas()


@sensitive_variables("password")
def _password_rechazo(*, usuario: Usuario | None, password: str) -> str | None:
    """Why `password` does not let `usuario` in, or None if it does. Costs one hasher run in
    every case (an unknown user too); upgrades an old hash on success."""
    if usuario is None or not usuario.has_usable_password():
        _burn_hasher(password)
        return "unknown user" if usuario is None else "no usable password"
    if not usuario.is_active:
        check_password(password, usuario.password)  # same cost; no hash upgrade for them
        return "inactive user"
    if usuario.check_password(password):
        return None
    return "wrong password"


@sensitive_variables("password")
def acceso_password(
    *,
    identificador: str,
    password: str,
    ip: str | None,
    comprobar: Callable[[Usuario], bool] | None = None,
) -> Usuario:
    """The active user with this login or email and password, under the same lockout and
    timing as `acceso_normal` (for sign-ins that are not into a product, such as the JWT of
    /v2/auth/gettoken). `comprobar`, run after the password matched, may refuse the user
    anyway; its refusal is counted and answered like a wrong password.

    Raises AccesoBloqueado or CredencialesInvalidas.
    """
    usuario = _find_usuario(identificador)
    clave_cuenta = intentos_clave_cuenta(identificador=identificador, usuario=usuario)
    claves = [clave_cuenta, intentos_clave_ip(ip=ip)]
    fallos = _refuse_if_locked(claves=claves)  # before any hasher runs

    motivo = _password_rechazo(usuario=usuario, password=password)
    if motivo is None and comprobar is not None and not comprobar(usuario):
        motivo = "refused after the password matched"
    if motivo is None:
        if fallos[clave_cuenta]:
            intentos_reiniciar(clave=clave_cuenta)
        return usuario
    intentos_fallo(claves=claves, motivo=motivo)
    raise CredencialesInvalidas()


@sensitive_variables("pin")
def acceso_pin(
    *, sistema: Sistema, identificador: str, pin: str, id_dispositivo: int, ip: str | None
) -> Acceso:
    """Sign in with login or email and the PIN of one of the user's devices. Wrong PINs also
    lock the device itself (PIN_MAX_FALLOS in a row, see `dispositivo_verificar_pin`)."""
    usuario = _find_usuario(identificador, sistema=sistema)
    clave_cuenta = intentos_clave_cuenta(identificador=identificador, usuario=usuario)
    claves = [clave_cuenta, intentos_clave_ip(ip=ip)]
    fallos = _refuse_if_locked(claves=claves)

    dispositivo = (
        Dispositivo.objects.filter(pk=id_dispositivo, usuario=usuario).first()
        if usuario is not None
        else None
    )
    if dispositivo is None:
        _burn_hasher(pin)
        motivo = "unknown user" if usuario is None else "device not the user's"
    elif not dispositivo_verificar_pin(dispositivo=dispositivo, pin=pin):
        motivo = "wrong PIN or device locked or revoked"
    elif not usuario.is_active:
        motivo = "inactive user"
    else:
        return _grant(
            usuario=usuario,
            sistema=sistema,
            ip=ip,
            clave_cuenta=clave_cuenta,
            fallos_cuenta=fallos[clave_cuenta],
            dispositivo=dispositivo,
        )
    intentos_fallo(claves=claves, motivo=motivo)
    raise CredencialesInvalidas()


def telefono_normalizar(texto: str) -> str:
    """A phone number without spaces, dashes, dots or brackets ("+506 8888-7777")."""
    return re.sub(r"[\s().-]", "", texto or "")


def _find_usuario_login(identificador: str) -> Usuario | None:
    """The only user with this email, or else the only one with this phone (or mobile)."""
    identificador = identificador.strip()
    if "@" in identificador:
        candidatos = Usuario.objects.filter(email__iexact=identificador)[:2]
    else:
        telefono = telefono_normalizar(identificador)
        if not re.fullmatch(r"\+?\d{6,20}", telefono):
            return None
        formas = {identificador, telefono}
        candidatos = Usuario.objects.filter(
            models.Q(phone__in=formas) | models.Q(movil__in=formas)
        )[:2]
    candidatos = list(candidatos)
    return candidatos[0] if len(candidatos) == 1 else None


@sensitive_variables("password")
def acceso_login(*, identificador: str, password: str, ip: str | None) -> Usuario:
    """Check an email-or-phone and password: the one check of the login API and of the
    authorization server's sign-in page. The user, or an AccesoError subclass; same counters
    and costs as `acceso_normal` (lockout checked before any hasher runs, an unknown login
    costs one hasher run like a wrong password).

    The account's failure count is not cleared here: the caller does it once the sign-in is
    complete (after the second factor, when there is one) with `acceso_completado`.
    """
    usuario = _find_usuario_login(identificador)
    claves = [
        intentos_clave_cuenta(identificador=identificador, usuario=usuario),
        intentos_clave_ip(ip=ip),
    ]
    _refuse_if_locked(claves=claves)  # before any hasher runs
    motivo = _password_rechazo(usuario=usuario, password=password)
    if motivo is None:
        return usuario
    intentos_fallo(claves=claves, motivo=motivo)
    raise CredencialesInvalidas()


def acceso_completado(*, usuario: Usuario) -> None:
    """A sign-in succeeded: the account's failure count starts again."""
    intentos_reiniciar(clave=intentos_clave_cuenta(identificador="", usuario=usuario))


def usuario_dict(*, usuario: Usuario, token: str) -> dict:
    """The seed's user dict (without `authenticated`, which SSO/access adds)."""
    return {
        "id": usuario.pk,
        "code": "",
        "name": usuario.nombre or usuario.username,
        "email": usuario.email,
        "phone": usuario.phone or usuario.movil,
        "token": token,
    }


def acceso_renovar(*, token: TokenUsuario, sistema: Sistema | None, ip: str | None) -> Acceso:
    """A new token in place of a live one (`SSO/refreshUserToken`); the old one dies.

    The token stays bound to its product: `sistema`, when given, must be it, and the user must
    still be allowed into it. Raises SinAccesoAlSistema, or CredencialesInvalidas if the token
    was renewed or revoked meanwhile.
    """
    if token.sistema_id is not None:
        if sistema is not None and sistema.pk != token.sistema_id:
            raise SinAccesoAlSistema()
        acceso = getattr(token, "acceso_sistema", None)  # annotated by token_autenticar
        if acceso is None:
            acceso = token.usuario.accesos_sistemas.filter(pk=token.sistema_id).exists()
        if not acceso:
            raise SinAccesoAlSistema()
    try:
        nuevo, plano = token_renovar(token=token, ip=ip)
    except TokenRevocado as exc:
        raise CredencialesInvalidas() from exc
    return Acceso(usuario=token.usuario, token=nuevo, token_plano=plano)
