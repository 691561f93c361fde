import ipaddress

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device
from oauth2_provider.models import AbstractApplication

from .fields import EncryptedTextField


class Departamento(models.Model):
    nombre = models.CharField(_("name"), max_length=120, unique=True)
    correo = models.EmailField(_("email"), blank=True)
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["nombre"]

    def __str__(self):
        return self.nombre


class Unidad(models.Model):
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.PROTECT,
        related_name="unidades",
        verbose_name=_("department"),
    )
    clave = models.SlugField(_("key"), max_length=40)
    nombre = models.CharField(_("name"), max_length=120)
    activo = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("unit")
        verbose_name_plural = _("units")
        ordering = ["departamento__nombre", "nombre"]
        constraints = [
            models.UniqueConstraint(fields=["departamento", "clave"], name="unidad_clave_unica")
        ]

    def __str__(self):
        return f"{self.departamento} / {self.nombre}"


class Rol(models.Model):
    nombre = models.CharField(_("name"), max_length=80, unique=True)

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["nombre"]

    def __str__(self):
        return self.nombre


class Sistema(models.Model):
    """One of the company's products whose users log in through the portal."""

    alias = models.SlugField(_("alias"), max_length=60, unique=True)
    nombre = models.CharField(_("name"), max_length=120)
    adi_token_hash = models.CharField(
        _("ADI token (SHA-256)"), max_length=64, blank=True, editable=False
    )
    adi_token_creado = models.DateTimeField(
        _("ADI token issued"), null=True, blank=True, editable=False
    )
    dominio = models.CharField(_("domain"), max_length=190, blank=True)
    url_reset = models.URLField(
        _("password-reset URL"),
        blank=True,
        help_text=_("The reset link sent by mail is this URL with `id` and `token` added."),
    )
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("system")
        verbose_name_plural = _("systems")
        ordering = ["alias"]

    def __str__(self):
        return self.nombre or self.alias


class OperadorVirtual(models.Model):
    """A tenant of the JWT API (seed 001's `virtual_operator`): integrations name its alias
    when they ask for a token, and the token carries it."""

    alias = models.SlugField(_("alias"), max_length=60, unique=True)
    nombre = models.CharField(_("name"), max_length=120)
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("virtual operator")
        verbose_name_plural = _("virtual operators")
        ordering = ["alias"]

    def __str__(self):
        return self.nombre or self.alias


class Usuario(AbstractUser):
    """An internal user. `username` is the seed's `login`."""

    class Tipo(models.TextChoices):
        OPERADOR = "operador", _("operator")
        ADMINISTRADOR = "administrador", _("administrator")
        CLIENTE = "cliente", _("customer")

    nombre = models.CharField(_("full name"), max_length=150, blank=True)
    cedula = models.CharField(_("national id"), max_length=40, blank=True)
    tipo_usuario = models.CharField(
        _("user type"), max_length=20, choices=Tipo.choices, default=Tipo.OPERADOR
    )
    rol = models.ForeignKey(
        Rol, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("role")
    )
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usuarios",
        verbose_name=_("department"),
    )
    jefe = models.BooleanField(
        _("head of department"),
        default=False,
        help_text=_("Heads see all of their department's work and receive its escalations."),
    )
    movil = models.CharField(_("mobile"), max_length=40, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    ext = models.CharField(_("extension"), max_length=20, blank=True)
    acceso_ticket = models.BooleanField(_("works tickets"), default=False)
    accesos_sistemas = models.ManyToManyField(
        Sistema, blank=True, related_name="usuarios", verbose_name=_("systems")
    )
    id_synology = models.PositiveBigIntegerField(_("Synology Chat user id"), null=True, blank=True)
    ultima_ip = models.GenericIPAddressField(_("last IP address"), null=True, blank=True)
    # One tenant per user: a token names exactly one operator. None: DEFAULT_VIRTUAL_OPERATOR.
    operador_virtual = models.ForeignKey(
        OperadorVirtual,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usuarios",
        verbose_name=_("virtual operator"),
        help_text=_("Empty: the default virtual operator (DEFAULT_VIRTUAL_OPERATOR)."),
    )
    # JWTs issued (`iat`) before this second are refused; moved on a password change and
    # whenever an inactive user is saved.
    jwt_valido_desde = models.DateTimeField(
        _("JWTs valid from"), null=True, blank=True, editable=False
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")
        swappable = "AUTH_USER_MODEL"
        # The login API's `permissions` (seed 003); the registration group holds both.
        permissions = [
            ("view-profile", _("Can view their own profile")),
            ("edit-profile", _("Can edit their own profile")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["id_synology"],
                condition=models.Q(id_synology__isnull=False),
                name="usuario_id_synology_unico",
            )
        ]

    def __str__(self):
        return self.nombre or self.username

    @property
    def nombre_visible(self) -> str:
        """The name to show or send: `nombre`, else first and last name, else the login."""
        return self.nombre or self.get_full_name() or self.username

    @property
    def status(self) -> str:
        return "ACTIVO" if self.is_active else "INACTIVO"

    def set_password(self, raw_password):
        """Set the password and revoke the user's earlier JWTs (saved with the password: a
        save limited to `update_fields=["password"]` takes `jwt_valido_desde` along)."""
        super().set_password(raw_password)
        if self.pk is not None and not getattr(self, "_rehashing", False):
            self._revocar_jwts()

    def check_password(self, raw_password):
        # A right password under an old hasher is re-hashed through set_password: the same
        # password, so the user's JWTs stay valid.
        self._rehashing = True
        try:
            return super().check_password(raw_password)
        finally:
            self._rehashing = False

    def _revocar_jwts(self):
        self.jwt_valido_desde = timezone.now()
        self._jwts_revocados = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        campos = set(update_fields) if update_fields is not None else None
        if self.pk is not None and not self.is_active and (campos is None or "is_active" in campos):
            self._revocar_jwts()  # deactivated (or saved while inactive): its JWTs die for good
        if campos is not None and getattr(self, "_jwts_revocados", False):
            kwargs["update_fields"] = campos | {"jwt_valido_desde"}
        super().save(*args, **kwargs)
        self._jwts_revocados = False


class ConsumidorAPI(models.Model):
    """A system that calls the consumo APIs with `X-User-Consumo` / `X-User-Secret`."""

    class Permiso(models.TextChoices):
        SSO = "sso", _("SSO: access, token refresh, password recovery")
        SSO_ADI = "sso.adi", _("SSO: ADI system tokens")
        CORREO_CONFIG = "correo.config", _("Mail: mailbox configuration (passwords)")
        CORREO_SAVE = "correo.save", _("Mail: incoming mail")
        USUARIOS = "usuarios", _("Internal users")

    nombre = models.CharField(
        _("name"),
        max_length=80,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9._-]+$",
                _("Letters, digits, dots, hyphens and underscores only (it travels in a header)."),
            )
        ],
    )
    descripcion = models.CharField(_("purpose"), max_length=255, blank=True)
    secreto_hash = models.CharField(_("secret (HMAC-SHA256)"), max_length=64, editable=False)
    permisos = models.JSONField(_("permissions"), default=list, blank=True)
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    rotado = models.DateTimeField(_("secret rotated"), null=True, blank=True, editable=False)
    revocado = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    # Empty: any address. Checked against the client address (TRUSTED_PROXIES honoured).
    ips_permitidas = models.JSONField(
        _("allowed IPs"),
        default=list,
        blank=True,
        help_text=_("IP addresses or networks (CIDR); empty: any address."),
    )
    # After a rotation the previous secret keeps working until `anterior_vence`.
    secreto_anterior_hash = models.CharField(
        _("previous secret (HMAC-SHA256)"), max_length=64, blank=True, editable=False
    )
    anterior_vence = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    # Written at most once a minute per consumer and process: approximate by design.
    ultimo_uso = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API consumer")
        verbose_name_plural = _("API consumers")
        ordering = ["nombre"]

    def __str__(self):
        return self.nombre

    def clean(self):
        unknown = set(self.permisos or []) - set(self.Permiso.values)
        if unknown:
            raise ValidationError({"permisos": _("Unknown permissions: %s") % ", ".join(unknown)})
        self.ips_permitidas = normalize_networks(self.ips_permitidas)


def normalize_networks(value) -> list[str]:
    """IPs/CIDRs as canonical network strings, sorted and without repeats; ValidationError
    naming the entries that are not one (a network with host bits set included: 10.1.2.3/8
    is more likely a typo than a wish for 10.0.0.0/8)."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError({"ips_permitidas": _("A list of IP addresses or networks.")})
    networks, invalid = set(), []
    for item in value:
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            networks.add(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError:
            invalid.append(str(item))
    if invalid:
        raise ValidationError(
            {"ips_permitidas": _("Not an IP address or network: %s") % ", ".join(invalid)}
        )
    return [str(net) for net in sorted(networks, key=lambda net: (net.version, net))]


class Bitacora(models.Model):
    """The audit log: one row per API call, failed ones included. Append-only: deleting a
    consumer or a user leaves their rows as they were (no constraint, no cascade)."""

    creado = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    consumidor = models.ForeignKey(
        ConsumidorAPI,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consumer"),
    )
    usuario = models.ForeignKey(
        Usuario,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    endpoint = models.CharField(_("endpoint"), max_length=255)
    metodo = models.CharField(_("method"), max_length=10)
    estado = models.PositiveSmallIntegerField(_("status"))
    ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    duracion_ms = models.FloatField(_("duration (ms)"), default=0)
    id_padre = models.BigIntegerField(_("parent entry"), null=True, blank=True, db_index=True)
    resumen = models.JSONField(_("request summary"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-id"]

    def __str__(self):
        return f"#{self.pk} {self.metodo} {self.endpoint} {self.estado}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError("Bitacora rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Bitacora rows are append-only; prune them with podar_bitacora.")


class Dispositivo(models.Model):
    """A user's device where they may sign in with a PIN (`modo: pin`)."""

    usuario = models.ForeignKey(
        Usuario, on_delete=models.CASCADE, related_name="dispositivos", verbose_name=_("user")
    )
    nombre = models.CharField(_("name"), max_length=120)
    pin_hash = models.CharField(_("PIN (hashed)"), max_length=255, editable=False)
    activo = models.BooleanField(_("active"), default=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    revocado = models.DateTimeField(_("revoked"), null=True, blank=True)
    fallos_pin = models.PositiveSmallIntegerField(_("failed PIN attempts"), default=0)
    bloqueado = models.DateTimeField(_("locked"), null=True, blank=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self):
        return f"{self.usuario} · {self.nombre}"


class TokenUsuario(models.Model):
    """A user token `"<id>|<secret>"`: the secret is kept only as its SHA-256."""

    usuario = models.ForeignKey(
        Usuario, on_delete=models.CASCADE, related_name="tokens", verbose_name=_("user")
    )
    secreto_hash = models.CharField(_("secret (SHA-256)"), max_length=64, editable=False)
    sistema = models.ForeignKey(
        Sistema,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("system"),
    )
    dispositivo = models.ForeignKey(
        Dispositivo,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tokens",
        verbose_name=_("device"),
    )
    ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    ultimo_uso = models.DateTimeField(_("last used"), null=True, blank=True)
    expira = models.DateTimeField(_("expires"), db_index=True)
    revocado = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("user token")
        verbose_name_plural = _("user tokens")
        indexes = [models.Index(fields=["usuario", "revocado"], name="token_usuario_vivo")]

    def __str__(self):
        return f"{self.usuario} #{self.pk}"


class SolicitudADI(models.Model):
    """The nonce of an ADI access request: used once, then never again."""

    nonce = models.CharField(_("nonce"), max_length=64, unique=True)
    sistema = models.ForeignKey(
        Sistema, on_delete=models.CASCADE, related_name="+", verbose_name=_("system")
    )
    username = models.CharField(_("user"), max_length=150)
    email = models.EmailField(_("email"), blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    expira = models.DateTimeField(_("expires"), db_index=True)
    usado = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("ADI access request")
        verbose_name_plural = _("ADI access requests")

    def __str__(self):
        return f"{self.username} → {self.sistema}"


# --- Two-factor authentication (sso.dosfa) ----------------------------------------------------


class DispositivoTOTP(Device):
    """An authenticator app (RFC 6238, 6 digits, 30 s steps). The key is encrypted at rest;
    `ultimo_t` is the last time step accepted, so a code is never accepted twice."""

    clave = EncryptedTextField(_("key (hex)"), editable=False)
    ultimo_t = models.BigIntegerField(_("last accepted time step"), default=-1, editable=False)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("authenticator app")
        verbose_name_plural = _("authenticator apps")


class DispositivoCodigo(Device):
    """Codes sent by email or SMS. The codes themselves belong to a login attempt
    (`CodigoDosfa`); the device says the user chose this method and where codes go."""

    class Metodo(models.TextChoices):
        EMAIL = "email", _("email")
        SMS = "sms", _("SMS")

    metodo = models.CharField(_("method"), max_length=5, choices=Metodo.choices)
    destino = models.CharField(
        _("destination"),
        max_length=254,
        blank=True,
        help_text=_("Email address or phone number; empty: the user's own."),
    )
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("code by email or SMS")
        verbose_name_plural = _("codes by email or SMS")

    def verify_token(self, token):
        return False  # codes are checked against their login attempt (sso.dosfa)


class IntentoDosfa(models.Model):
    """A login attempt waiting for its second factor, named by its `temp_token`."""

    usuario = models.ForeignKey(
        Usuario, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    token_hash = models.CharField(_("temp_token (SHA-256)"), max_length=64, unique=True)
    metodo = models.CharField(_("method"), max_length=5)
    ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    creado = models.DateTimeField(_("created"), default=timezone.now)
    expira = models.DateTimeField(_("expires"), db_index=True)
    fallos = models.PositiveSmallIntegerField(_("wrong codes"), default=0)
    envios = models.PositiveSmallIntegerField(_("codes sent"), default=0)
    ultimo_envio = models.DateTimeField(_("last code sent"), null=True, blank=True)
    quemado = models.DateTimeField(_("burnt"), null=True, blank=True)
    completado = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("two-factor login attempt")
        verbose_name_plural = _("two-factor login attempts")

    def __str__(self):
        return f"{self.usuario} #{self.pk}"


class CodigoDosfa(models.Model):
    """A code sent by email or SMS for one login attempt: only its keyed hash is stored."""

    intento = models.ForeignKey(
        IntentoDosfa, on_delete=models.CASCADE, related_name="codigos", verbose_name=_("attempt")
    )
    metodo = models.CharField(_("method"), max_length=5)
    codigo_hash = models.CharField(_("code (HMAC-SHA256)"), max_length=64)
    creado = models.DateTimeField(_("created"), default=timezone.now)
    expira = models.DateTimeField(_("expires"))
    usado = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("two-factor code")
        verbose_name_plural = _("two-factor codes")

    def __str__(self):
        return f"{self.metodo} #{self.pk}"


class CodigoRecuperacion(models.Model):
    """A single-use recovery code of a TOTP user: only its keyed hash is stored."""

    usuario = models.ForeignKey(
        Usuario,
        on_delete=models.CASCADE,
        related_name="codigos_recuperacion",
        verbose_name=_("user"),
    )
    codigo_hash = models.CharField(_("code (HMAC-SHA256)"), max_length=64)
    creado = models.DateTimeField(_("created"), default=timezone.now)
    usado = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [
            models.UniqueConstraint(
                fields=["usuario", "codigo_hash"], name="codigo_recuperacion_unico"
            )
        ]

    def __str__(self):
        return f"{self.usuario} #{self.pk}"


class SesionApp(models.Model):
    """A sign-in an application registered (`POST /api/app-sessions/register`)."""

    usuario = models.ForeignKey(
        Usuario, on_delete=models.CASCADE, related_name="sesiones_app", verbose_name=_("user")
    )
    token = models.ForeignKey(
        TokenUsuario,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("token"),
    )
    app_name = models.CharField(_("application"), max_length=150)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    creado = models.DateTimeField(_("created"), default=timezone.now)
    terminado = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("application session")
        verbose_name_plural = _("application sessions")
        indexes = [models.Index(fields=["usuario", "terminado"], name="sesion_app_viva")]

    def __str__(self):
        return f"{self.usuario} · {self.app_name}"

    @property
    def is_active(self) -> bool:
        return self.terminado is None


class AplicacionOAuth(AbstractApplication):
    """An OAuth2 / OpenID Connect client (django-oauth-toolkit's Application, swapped in).

    `skip_authorization` marks a first-party client: its users are not asked for consent.
    A disabled client can neither start a flow nor use the tokens it already has.
    """

    activo = models.BooleanField(_("active"), default=True)

    class Meta(AbstractApplication.Meta):
        verbose_name = _("OAuth client")
        verbose_name_plural = _("OAuth clients")
        ordering = ["name"]

    def is_usable(self, request) -> bool:
        return self.activo


class CanjeCodigo(models.Model):
    """An authorization code that was exchanged for tokens: the SHA-256 of the code and the
    family of refresh tokens it started. A second exchange of the same code revokes that
    family; the time of the first bounds the family's absolute lifetime."""

    codigo_hash = models.CharField(_("code (SHA-256)"), max_length=64, unique=True)
    aplicacion = models.ForeignKey(
        AplicacionOAuth, on_delete=models.CASCADE, verbose_name=_("OAuth client")
    )
    usuario = models.ForeignKey(Usuario, on_delete=models.CASCADE, verbose_name=_("user"))
    familia = models.UUIDField(_("token family"), unique=True)
    creado = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("redeemed authorization code")
        verbose_name_plural = _("redeemed authorization codes")

    def __str__(self):
        return f"{self.aplicacion} / {self.usuario} / {self.creado:%Y-%m-%d %H:%M}"
