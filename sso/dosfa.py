"""Two-factor authentication: TOTP apps, codes by email or SMS, and recovery codes.

A sign-in whose password was right but whose user has a second factor becomes a login attempt
(`IntentoDosfa`) named by a `temp_token` ("temp_" + 32 random bytes; only its SHA-256 is
stored). Codes sent by email or SMS belong to that attempt: 6 digits, valid
TWO_FACTOR_CODE_MINUTES, single-use, stored only as an HMAC keyed with SECRET_KEY and bound to
the attempt's id (a code of one attempt is worthless in another, and a leaked table cannot be
brute-forced without the key). Recovery codes are stored the same way. TOTP keys are the one
secret kept reversibly, encrypted at rest (`EncryptedTextField`), and each time step is
accepted once. TWO_FACTOR_MAX_WRONG wrong codes burn the attempt; every wrong code also counts
on the account's and the IP's lockout counters (`sso.acceso`), which are checked first.

The callers (the login API, the authorization server's login page, the staff verification
page) use `dosfa_requerido`, `dosfa_iniciar`, `dosfa_verificar` and `dosfa_reenviar`. The user
`dosfa_verificar` returns carries `otp_device` (django-otp's convention): passing it to
`django.contrib.auth.login` marks the session as verified for `OTPMiddleware`.
"""

import base64
import hashlib
import logging
import math
import re
import secrets
import time
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables
from django_otp.oath import TOTP as RelojTOTP

from .acceso import (
    AccesoBloqueado,
    acceso_completado,
    intentos_bloqueo,
    intentos_clave_cuenta,
    intentos_clave_ip,
    intentos_fallo,
)
from .models import (
    CodigoDosfa,
    CodigoRecuperacion,
    DispositivoCodigo,
    DispositivoTOTP,
    IntentoDosfa,
    Usuario,
)
from .sms import EnvioSMSFallido, sms_enviar

logger = logging.getLogger("incidencias.sso.dosfa")

TOTP = "totp"
EMAIL = DispositivoCodigo.Metodo.EMAIL.value
SMS = DispositivoCodigo.Metodo.SMS.value
PREFIJO_TEMP = "temp_"
RECUPERACION_CANTIDAD = 10
_CODIGO = re.compile(r"\d{6}")
_RECUPERACION = re.compile(r"[a-z2-9]{5}-?[a-z2-9]{5}")
_ALFABETO_RECUPERACION = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l


class DosfaError(Exception):
    """A second-factor step refused."""


class IntentoInvalido(DosfaError):
    """The temp_token is unknown, expired, burnt or already used."""


class CodigoIncorrecto(DosfaError):
    """A wrong, expired or reused code; `restantes` wrong codes are left on the attempt."""

    def __init__(self, restantes: int | None = None):
        super().__init__(restantes)
        self.restantes = restantes


class IntentoQuemado(IntentoInvalido):
    """This wrong code was the last one allowed: the temp_token is burnt."""


class MetodoNoDisponible(DosfaError):
    """The user has no such method (or nowhere to send its code)."""


class ReenvioLimitado(DosfaError):
    """Too soon after the last code, or too many codes for this attempt."""

    def __init__(self, espera: int):
        super().__init__(espera)
        self.espera = espera


class EnvioFallido(DosfaError):
    """The mail or SMS with the code could not be handed over."""


# --- Hashes -------------------------------------------------------------------------------------


def _sha256(texto: str) -> str:
    return hashlib.sha256(texto.encode("utf-8")).hexdigest()


@sensitive_variables("valor")
def _hmac(valor: str, *, sal: str) -> str:
    return salted_hmac(f"sso.dosfa.{sal}", valor, algorithm="sha256").hexdigest()


def codigo_hash(*, intento_id: int, codigo: str) -> str:
    return _hmac(f"{intento_id}:{codigo}", sal="codigo")


def recuperacion_hash(*, usuario_id: int, codigo: str) -> str:
    return _hmac(f"{usuario_id}:{codigo.replace('-', '').lower()}", sal="recuperacion")


# --- Methods ------------------------------------------------------------------------------------


def _totp_de(usuario: Usuario) -> DispositivoTOTP | None:
    return DispositivoTOTP.objects.filter(user=usuario, confirmed=True).order_by("pk").first()


def dosfa_activo(*, usuario: Usuario) -> bool:
    """Whether the user has a confirmed second-factor device (`two_factor_enabled`)."""
    return (
        DispositivoTOTP.objects.filter(user=usuario, confirmed=True).exists()
        or DispositivoCodigo.objects.filter(user=usuario, confirmed=True).exists()
    )


def dosfa_metodos(*, usuario: Usuario) -> list[str]:
    """The user's second-factor methods, preferred first. Staff without a device, when
    TWO_FACTOR_STAFF_REQUIRED is on, get codes by email until they enrol one."""
    metodos = [TOTP] if _totp_de(usuario) else []
    for metodo in (
        DispositivoCodigo.objects.filter(user=usuario, confirmed=True)
        .order_by("pk")
        .values_list("metodo", flat=True)
    ):
        if metodo not in metodos:
            metodos.append(metodo)
    if not metodos and settings.TWO_FACTOR_STAFF_REQUIRED and usuario.is_staff and usuario.email:
        metodos.append(EMAIL)
    return metodos


def dosfa_requerido(*, usuario: Usuario) -> bool:
    """Whether signing in needs a second factor for this user."""
    return bool(dosfa_metodos(usuario=usuario))


def _destino(usuario: Usuario, metodo: str) -> str:
    dispositivo = (
        DispositivoCodigo.objects.filter(user=usuario, confirmed=True, metodo=metodo)
        .order_by("pk")
        .first()
    )
    if dispositivo and dispositivo.destino:
        return dispositivo.destino
    if metodo == EMAIL:
        return usuario.email
    return usuario.movil or usuario.phone


def _dispositivo_codigo(usuario: Usuario, metodo: str) -> DispositivoCodigo | None:
    return (
        DispositivoCodigo.objects.filter(user=usuario, confirmed=True, metodo=metodo)
        .order_by("pk")
        .first()
    )


# --- Attempts -----------------------------------------------------------------------------------


def _ahora():
    return timezone.now()


def _vigencia() -> timedelta:
    return timedelta(minutes=settings.TWO_FACTOR_CODE_MINUTES)


def dosfa_iniciar(
    *, usuario: Usuario, metodo: str | None = None, ip: str | None = None
) -> IntentoDosfa:
    """Open a login attempt for the user's second factor and send its code (email, SMS).

    The returned attempt carries `temp_token` (shown once) and `enviado_a` (where the code
    went, or None for TOTP). Raises MetodoNoDisponible or EnvioFallido.
    """
    metodos = dosfa_metodos(usuario=usuario)
    metodo = metodo or (metodos[0] if metodos else None)
    if metodo is None or metodo not in metodos:
        raise MetodoNoDisponible()
    if metodo != TOTP and not _destino(usuario, metodo):
        raise MetodoNoDisponible()
    plano = PREFIJO_TEMP + secrets.token_urlsafe(32)
    ahora = _ahora()
    intento = IntentoDosfa.objects.create(
        usuario=usuario,
        token_hash=_sha256(plano),
        metodo=metodo,
        ip=ip,
        creado=ahora,
        expira=ahora + _vigencia(),
        envios=0 if metodo == TOTP else 1,
        ultimo_envio=None if metodo == TOTP else ahora,
    )
    intento.temp_token = plano
    intento.enviado_a = None
    if metodo != TOTP:
        intento.enviado_a = _enviar_codigo(intento=intento, metodo=metodo)
    return intento


def _intento_vivo(temp_token: str) -> IntentoDosfa:
    if not isinstance(temp_token, str) or not temp_token.startswith(PREFIJO_TEMP):
        raise IntentoInvalido()
    if len(temp_token) > 100:
        raise IntentoInvalido()
    intento = (
        IntentoDosfa.objects.select_related("usuario")
        .filter(token_hash=_sha256(temp_token))
        .first()
    )
    if (
        intento is None
        or intento.quemado is not None
        or intento.completado is not None
        or intento.expira <= _ahora()
        or not intento.usuario.is_active
    ):
        raise IntentoInvalido()
    return intento


@sensitive_variables("codigo")
def _enviar_codigo(*, intento: IntentoDosfa, metodo: str) -> str:
    """A new code for the attempt (earlier unused ones die), sent; returns where it went."""
    usuario = intento.usuario
    destino = _destino(usuario, metodo)
    if not destino:
        raise MetodoNoDisponible()
    codigo = f"{secrets.randbelow(10**6):06d}"
    ahora = _ahora()
    with transaction.atomic():
        CodigoDosfa.objects.filter(intento=intento, usado__isnull=True).delete()
        CodigoDosfa.objects.create(
            intento=intento,
            metodo=metodo,
            codigo_hash=codigo_hash(intento_id=intento.pk, codigo=codigo),
            creado=ahora,
            expira=ahora + _vigencia(),
        )
        IntentoDosfa.objects.filter(pk=intento.pk).update(metodo=metodo, expira=ahora + _vigencia())
    minutos = settings.TWO_FACTOR_CODE_MINUTES
    try:
        if metodo == SMS:
            sms_enviar(
                numero=destino,
                texto=f"Su código de verificación es {codigo}. Vence en {minutos} minutos.",
            )
        else:
            EmailMessage(
                subject="Código de verificación",
                body=(
                    f"Su código de verificación es: {codigo}\n\n"
                    f"Vence en {minutos} minutos y solo puede usarse una vez.\n"
                    "Si usted no intentó iniciar sesión, cambie su contraseña.\n"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[destino],
            ).send(fail_silently=False)
    except (EnvioSMSFallido, OSError) as exc:
        logger.error(
            "Two-factor code for user %s not sent by %s: %s",
            usuario.pk,
            metodo,
            exc.__class__.__name__,
        )
        raise EnvioFallido() from exc
    return destino


def dosfa_reenviar(*, temp_token: str, metodo: str) -> IntentoDosfa:
    """Send a new code for the attempt, by `metodo` (email or sms); earlier codes die.

    At most TWO_FACTOR_MAX_SENDS codes per attempt, TWO_FACTOR_RESEND_SECONDS apart
    (ReenvioLimitado). The attempt returned carries `enviado_a`.
    """
    intento = _intento_vivo(temp_token)
    if metodo == TOTP or metodo not in dosfa_metodos(usuario=intento.usuario):
        raise MetodoNoDisponible()
    ahora = _ahora()
    pausa = timedelta(seconds=settings.TWO_FACTOR_RESEND_SECONDS)
    # Claim the send with one conditional UPDATE: two concurrent resends send one code.
    reclamado = (
        IntentoDosfa.objects.filter(pk=intento.pk, envios__lt=settings.TWO_FACTOR_MAX_SENDS)
        .filter(Q(ultimo_envio__isnull=True) | Q(ultimo_envio__lte=ahora - pausa))
        .update(envios=F("envios") + 1, ultimo_envio=ahora)
    )
    if not reclamado:
        intento.refresh_from_db(fields=["envios", "ultimo_envio", "expira"])
        if intento.envios >= settings.TWO_FACTOR_MAX_SENDS:
            espera = intento.expira - ahora
        else:
            espera = intento.ultimo_envio + pausa - ahora
        raise ReenvioLimitado(max(1, math.ceil(espera.total_seconds())))
    intento.enviado_a = _enviar_codigo(intento=intento, metodo=metodo)
    intento.metodo = metodo
    return intento


@sensitive_variables("code", "temp_token")
def dosfa_verificar(*, temp_token: str, code: str) -> Usuario:
    """The user of the attempt, if `code` is right: the attempt's latest email/SMS code, a
    TOTP code of the user's app, or one of their recovery codes. Each is accepted once.

    Raises IntentoInvalido (unknown/expired/burnt/used temp_token), IntentoQuemado (this wrong
    code was the last allowed), CodigoIncorrecto, or sso.acceso.AccesoBloqueado. The user comes
    with `otp_device`: the django-otp device that verified them (None for staff who got an
    email code before enrolling a device).
    """
    intento = _intento_vivo(temp_token)
    usuario = intento.usuario
    claves = [
        intentos_clave_cuenta(identificador="", usuario=usuario),
        intentos_clave_ip(ip=intento.ip),
    ]
    espera = intentos_bloqueo(claves=claves)
    if espera:
        raise AccesoBloqueado(espera)
    code = re.sub(r"\s", "", str(code or "")).lower()
    correcto, dispositivo = _comprobar(intento=intento, usuario=usuario, code=code)
    if not correcto:
        IntentoDosfa.objects.filter(pk=intento.pk).update(fallos=F("fallos") + 1)
        intento.refresh_from_db(fields=["fallos"])
        intentos_fallo(claves=claves, motivo="wrong two-factor code")
        restantes = settings.TWO_FACTOR_MAX_WRONG - intento.fallos
        if restantes <= 0:
            IntentoDosfa.objects.filter(pk=intento.pk, quemado__isnull=True).update(
                quemado=_ahora()
            )
            raise IntentoQuemado()
        raise CodigoIncorrecto(restantes)
    cerrado = IntentoDosfa.objects.filter(
        pk=intento.pk, completado__isnull=True, quemado__isnull=True
    ).update(completado=_ahora())
    if cerrado != 1:
        raise IntentoInvalido()  # completed or burnt by a concurrent request
    acceso_completado(usuario=usuario)
    usuario.otp_device = dispositivo
    return usuario


def _comprobar(*, intento: IntentoDosfa, usuario: Usuario, code: str):
    """(right?, device) for a code typed for this attempt."""
    if _CODIGO.fullmatch(code):
        if intento.metodo != TOTP:
            usados = CodigoDosfa.objects.filter(
                intento=intento,
                codigo_hash=codigo_hash(intento_id=intento.pk, codigo=code),
                usado__isnull=True,
                expira__gt=_ahora(),
            ).update(usado=_ahora())
            if usados == 1:
                return True, _dispositivo_codigo(usuario, intento.metodo)
        dispositivo = _totp_de(usuario)
        if dispositivo is not None and totp_verificar(dispositivo=dispositivo, code=code):
            return True, dispositivo
        return False, None
    if _RECUPERACION.fullmatch(code):
        dispositivo = _totp_de(usuario)
        if dispositivo is not None and recuperacion_usar(usuario=usuario, code=code):
            return True, dispositivo
    return False, None


# --- TOTP ---------------------------------------------------------------------------------------


def _totp(dispositivo: DispositivoTOTP) -> RelojTOTP:
    reloj = RelojTOTP(bytes.fromhex(dispositivo.clave), step=30, digits=6)
    reloj.time = time.time()
    return reloj


@sensitive_variables("code")
def totp_verificar(*, dispositivo: DispositivoTOTP, code: str) -> bool:
    """Whether `code` is the app's code now (one step of drift either way), and its time step
    was never accepted before; the step is recorded with a conditional UPDATE, so of two
    concurrent uses of one code exactly one wins."""
    if not _CODIGO.fullmatch(code or ""):
        return False
    reloj = _totp(dispositivo)
    if not reloj.verify(int(code), tolerance=1, min_t=dispositivo.ultimo_t + 1):
        return False
    paso = reloj.t()
    aceptado = DispositivoTOTP.objects.filter(pk=dispositivo.pk, ultimo_t__lt=paso).update(
        ultimo_t=paso
    )
    dispositivo.ultimo_t = paso
    return aceptado == 1


def totp_crear(*, usuario: Usuario) -> DispositivoTOTP:
    """The user's pending (unconfirmed) app, or a new one with a fresh 160-bit key."""
    pendiente = DispositivoTOTP.objects.filter(user=usuario, confirmed=False).first()
    if pendiente is not None:
        return pendiente
    return DispositivoTOTP.objects.create(
        user=usuario, name="TOTP", confirmed=False, clave=secrets.token_hex(20)
    )


def totp_secreto(dispositivo: DispositivoTOTP) -> str:
    """The key in base32, as authenticator apps take it typed in."""
    return base64.b32encode(bytes.fromhex(dispositivo.clave)).decode("ascii").rstrip("=")


def totp_uri(dispositivo: DispositivoTOTP) -> str:
    """The otpauth:// URI the QR code carries."""
    emisor = settings.TWO_FACTOR_ISSUER
    cuenta = dispositivo.user.email or dispositivo.user.username
    etiqueta = quote(f"{emisor}:{cuenta}", safe="")
    consulta = urlencode(
        {
            "secret": totp_secreto(dispositivo),
            "issuer": emisor,
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{etiqueta}?{consulta}"


@sensitive_variables("code")
def totp_confirmar(*, dispositivo: DispositivoTOTP, code: str) -> list[str]:
    """Confirm a pending app with its current code; returns new recovery codes (shown once).
    Raises CodigoIncorrecto."""
    if dispositivo.confirmed or not totp_verificar(
        dispositivo=dispositivo, code=re.sub(r"\s", "", code or "")
    ):
        raise CodigoIncorrecto()
    with transaction.atomic():
        DispositivoTOTP.objects.filter(pk=dispositivo.pk).update(confirmed=True)
        DispositivoTOTP.objects.filter(user=dispositivo.user, confirmed=False).delete()
        dispositivo.confirmed = True
        return recuperacion_generar(usuario=dispositivo.user)


# --- Recovery codes -----------------------------------------------------------------------------


def recuperacion_generar(*, usuario: Usuario) -> list[str]:
    """New recovery codes for the user ("xxxxx-xxxxx", 50 bits each); the old ones die."""
    codigos = []
    while len(codigos) < RECUPERACION_CANTIDAD:
        crudo = "".join(secrets.choice(_ALFABETO_RECUPERACION) for _ in range(10))
        codigo = f"{crudo[:5]}-{crudo[5:]}"
        if codigo not in codigos:
            codigos.append(codigo)
    with transaction.atomic():
        CodigoRecuperacion.objects.filter(usuario=usuario).delete()
        CodigoRecuperacion.objects.bulk_create(
            CodigoRecuperacion(
                usuario=usuario, codigo_hash=recuperacion_hash(usuario_id=usuario.pk, codigo=c)
            )
            for c in codigos
        )
    return codigos


@sensitive_variables("code")
def recuperacion_usar(*, usuario: Usuario, code: str) -> bool:
    """Spend one recovery code; False if it is not one of the user's unused codes."""
    return (
        CodigoRecuperacion.objects.filter(
            usuario=usuario,
            codigo_hash=recuperacion_hash(usuario_id=usuario.pk, codigo=code),
            usado__isnull=True,
        ).update(usado=_ahora())
        == 1
    )


def recuperacion_restantes(*, usuario: Usuario) -> int:
    return CodigoRecuperacion.objects.filter(usuario=usuario, usado__isnull=True).count()
