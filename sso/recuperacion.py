"""Password recovery for the products' users (SSO/password/forgot and SSO/password/reset).

The reset token is Django's `PasswordResetTokenGenerator`: stateless, it expires after
PASSWORD_RESET_TIMEOUT (PASSWORD_RESET_TIMEOUT_MINUTES) and dies once used, because it hashes
the password (and last login and email) the reset changes. Its salt names the product, so a
link mailed for one product does not work on another. The link's `id` is the user's pk in
URL-safe base64, as Django's own reset views use it.

`password_olvido_solicitar` answers the same whatever the email: unknown, inactive, without the
product or throttled, nothing is sent and nothing is said. The mail goes after the transaction
commits, from a background thread, so neither the SMTP round trip (timing) nor an SMTP failure
(the answer) tell a caller whether the address has an account.
"""

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables

from .models import Sistema, Usuario
from .tokens import tokens_revocar_usuario

logger = logging.getLogger("incidencias.sso.recuperacion")

MENSAJE_PRODUCTO_DESCONOCIDO = "Producto no encontrado."
MENSAJE_TOKEN_INVALIDO = "Token inválido o vencido."  # noqa: S105 - a message, not a secret
MENSAJE_NO_COINCIDEN = "Las contraseñas no coinciden."

# One worker: reset mails are few, and sending them in order makes `correos_esperar` a barrier.
_envios = ThreadPoolExecutor(max_workers=1, thread_name_prefix="correo-reset")


class TokenResetInvalido(Exception):
    """The reset link is wrong, expired, already used, or its user may no longer use it."""


class GeneradorTokenReset(PasswordResetTokenGenerator):
    """Django's reset token, salted per product."""

    def __init__(self, *, sistema: Sistema):
        super().__init__()
        self.key_salt = f"sso.recuperacion.GeneradorTokenReset:{sistema.alias}"


def sistema_para_recuperacion(*, alias: str) -> Sistema:
    """The active product named `alias`, or a 422 on `product`."""
    sistema = Sistema.objects.filter(alias=alias, activo=True).first()
    if sistema is None:
        raise ValidationError({"product": [MENSAJE_PRODUCTO_DESCONOCIDO]})
    return sistema


def _usuarios_con_acceso(*, sistema: Sistema):
    return Usuario.objects.filter(is_active=True, accesos_sistemas=sistema)


def throttle_clave(*, email: str, ip: str | None) -> str:
    """The cache key counting reset requests of one email from one IP."""
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip or ''}".encode()).hexdigest()
    return f"sso:password-forgot:{digest}"


def _throttle_superado(*, email: str, ip: str | None) -> bool:
    """Count this request for its email + IP; True once over PASSWORD_FORGOT_MAX_PER_HOUR.

    Past the limit the caller answers exactly as before but sends nothing: a different answer
    (a 429) would tell which addresses got mail, and sending on would let anyone flood an
    inbox with reset mails.
    """
    limite = settings.PASSWORD_FORGOT_MAX_PER_HOUR
    if limite <= 0:
        return False
    key = throttle_clave(email=email, ip=ip)
    try:
        cache.add(key, 0, timeout=3600)
        cuenta = cache.incr(key)
    except Exception:  # a cache outage must not stop password recovery
        logger.warning("Password-forgot throttle unavailable (cache error)", exc_info=True)
        return False
    return cuenta > limite


def enlace_reset(*, sistema: Sistema, uid: str, token: str) -> str:
    """The product's reset URL with `id` and `token` in its query (other parameters kept)."""
    partes = urlsplit(sistema.url_reset)
    query = [(k, v) for k, v in parse_qsl(partes.query) if k not in ("id", "token")]
    query += [("id", uid), ("token", token)]
    return urlunsplit(partes._replace(query=urlencode(query)))


@dataclass(frozen=True)
class _Correo:
    usuario_id: int
    sistema_alias: str
    mensaje: EmailMultiAlternatives


@sensitive_variables("token", "enlace")
def _correo_reset(*, usuario: Usuario, sistema: Sistema) -> _Correo:
    uid = urlsafe_base64_encode(force_bytes(usuario.pk))
    token = GeneradorTokenReset(sistema=sistema).make_token(usuario)
    enlace = enlace_reset(sistema=sistema, uid=uid, token=token)
    producto = sistema.nombre or sistema.alias
    nombre = usuario.nombre_visible
    minutos = settings.PASSWORD_RESET_TIMEOUT_MINUTES
    texto = (
        f"Hola, {nombre}:\n\n"
        f"Recibimos una solicitud para restablecer la contraseña de su cuenta en {producto}.\n"
        f"Para elegir una contraseña nueva, abra este enlace:\n\n{enlace}\n\n"
        f"El enlace vence en {minutos} minutos y solo puede usarse una vez.\n"
        "Si usted no lo solicitó, ignore este correo: su contraseña no cambiará.\n"
    )
    html = format_html(
        "<p>Hola, {}:</p>"
        "<p>Recibimos una solicitud para restablecer la contraseña de su cuenta en {}.</p>"
        '<p><a href="{}">Restablecer la contraseña</a></p>'
        "<p>El enlace vence en {} minutos y solo puede usarse una vez.</p>"
        "<p>Si usted no lo solicitó, ignore este correo: su contraseña no cambiará.</p>",
        nombre,
        producto,
        enlace,
        minutos,
    )
    mensaje = EmailMultiAlternatives(
        subject=f"Restablecer su contraseña de {producto}",
        body=texto,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[usuario.email],
    )
    mensaje.attach_alternative(html, "text/html")
    return _Correo(usuario_id=usuario.pk, sistema_alias=sistema.alias, mensaje=mensaje)


def _enviar(correo: _Correo) -> None:
    """Deliver one reset mail; a failure is logged (never with the message, which holds the
    token) and goes no further."""
    try:
        correo.mensaje.send(fail_silently=False)
    except Exception as exc:
        logger.error(
            "Password-reset mail to user %s (product %s) not sent: %s",
            correo.usuario_id,
            correo.sistema_alias,
            exc.__class__.__name__,
        )


def _encolar(correos: list[_Correo]) -> None:
    for correo in correos:
        # The SMTP backend reads its settings now, in the request's thread.
        correo.mensaje.connection = get_connection(fail_silently=False)
        _envios.submit(_enviar, correo)


def correos_esperar(timeout: float | None = None) -> None:
    """Wait until every reset mail handed over so far has been sent (or has failed)."""
    _envios.submit(lambda: None).result(timeout=timeout)


def password_olvido_solicitar(*, sistema: Sistema, email: str, ip: str | None) -> None:
    """Mail a reset link to the user with this email and access to `sistema`, if any.

    Returns nothing whatever happened, so that the caller's answer cannot differ.
    """
    if _throttle_superado(email=email, ip=ip):
        return
    usuarios = [
        usuario
        for usuario in _usuarios_con_acceso(sistema=sistema).filter(email__iexact=email.strip())
        if usuario.has_usable_password() and usuario.email
    ]
    if not usuarios:
        return
    if not sistema.url_reset:
        logger.warning("Product %s has no reset URL: no reset mail sent", sistema.alias)
        return
    correos = [_correo_reset(usuario=usuario, sistema=sistema) for usuario in usuarios]
    transaction.on_commit(lambda: _encolar(correos))


def _usuario_de_uid(*, sistema: Sistema, uid: str) -> Usuario | None:
    try:
        pk = int(urlsafe_base64_decode(uid).decode("ascii"))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not 0 < pk < 2**63:
        return None
    return _usuarios_con_acceso(sistema=sistema).filter(pk=pk).first()


@sensitive_variables("token", "password", "password_confirmation")
def password_restablecer(
    *, sistema: Sistema, uid: str, token: str, password: str, password_confirmation: str
) -> Usuario:
    """Set a new password with a mailed token; every token of the user is revoked.

    The token is checked first, so that the password validators (which compare the password
    with the user's name and email) say nothing about a user to a caller without a token.
    """
    generador = GeneradorTokenReset(sistema=sistema)
    usuario = _usuario_de_uid(sistema=sistema, uid=uid)
    if usuario is None or not generador.check_token(usuario, token):
        raise TokenResetInvalido()
    if password != password_confirmation:
        raise ValidationError({"password_confirmation": [MENSAJE_NO_COINCIDEN]})
    try:
        password_validation.validate_password(password, user=usuario)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    with transaction.atomic():
        # Checked again under the row lock: of two concurrent uses of one token, one wins.
        usuario = Usuario.objects.select_for_update().get(pk=usuario.pk)
        if not generador.check_token(usuario, token):
            raise TokenResetInvalido()
        usuario.set_password(password)
        usuario.save(update_fields=["password"])
        tokens_revocar_usuario(usuario=usuario)
    return usuario
