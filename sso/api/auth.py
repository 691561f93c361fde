"""The login API of seed 003 (envelope D): sign-in with 2FA, registration, logout, profile and
the user's application sessions.

Bearer authentication takes the three kinds of token (`BearerAuthentication`): user tokens
`"<id>|<secret>"`, OAuth2 access tokens (limited by their scopes: `profile` or `read` for the
profile and the user, `sessions` for app sessions) and the JWTs of /v2/auth/gettoken.
"""

from datetime import UTC

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import connections, router
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from oauth2_provider.models import AbstractAccessToken
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from incidencias.db import cursor_preparado, sentencia

from .. import dosfa
from ..acceso import (
    AccesoBloqueado,
    CredencialesInvalidas,
    acceso_completado,
    acceso_login,
)
from ..bitacora import client_ip
from ..models import DispositivoCodigo, DispositivoTOTP, TokenUsuario, Usuario
from ..oauth import token_oauth_revocar
from ..registro import RegistroCerrado, usuario_registrar
from ..sesiones import (
    SesionNoEncontrada,
    sesion_app_registrar,
    sesion_terminar,
    sesiones_de_usuario,
    sesiones_terminar_token,
)
from ..tokens import token_emitir
from .bearer import BearerAuthentication
from .consumo import IgnoreAccept
from .envelopes import ENVELOPE_D, ApiError
from .parsers import JSONParser
from .schema import auth_responses
from .scopes import requiere_scope

LOGIN_EXITOSO = "Login exitoso"
CODIGO_ENVIADO = "Código de verificación enviado"
CODIGO_TOTP = "Ingrese el código de su aplicación de autenticación"
CREDENCIALES_INVALIDAS = "Credenciales inválidas."
DEMASIADOS_INTENTOS = "Demasiados intentos fallidos. Intente más tarde."
TEMP_TOKEN_INVALIDO = "Token temporal inválido o vencido. Inicie sesión de nuevo."  # noqa: S105
TEMP_TOKEN_QUEMADO = "Demasiados códigos incorrectos. Inicie sesión de nuevo."  # noqa: S105
CODIGO_INVALIDO = "Código de verificación inválido."
METODO_NO_DISPONIBLE = "Método de verificación no disponible para este usuario."
REENVIO_LIMITADO = "Espere antes de pedir otro código."
ENVIO_FALLIDO = "No se pudo enviar el código de verificación. Intente de nuevo."
REGISTRO_CERRADO = "El registro de usuarios está cerrado."
USUARIO_REGISTRADO = "Usuario registrado"
SESION_CERRADA = "Sesión cerrada"
SESION_APP_REGISTRADA = "Sesión de app registrada"
SESIONES_ACTIVAS = "Sesiones activas"
SESION_TERMINADA = "Sesión terminada"
SESION_NO_ENCONTRADA = "Sesión no encontrada."


# --- Bodies -------------------------------------------------------------------------------------


def usuario_perfil(usuario: Usuario) -> dict:
    """The seed's user object (profile)."""
    return {
        "id": usuario.pk,
        "name": usuario.nombre_visible,
        "email": usuario.email or None,
        "phone": usuario.phone or usuario.movil or None,
        "avatar": None,
        "is_active": usuario.is_active,
    }


# Whether the user has a confirmed second factor, their groups and their permissions' codenames
# (ModelBackend's: their own and their groups'; every one for a superuser), in one statement:
# the login API answers them on every sign-in and on every GET /api/user, and five ORM queries
# (dosfa_activo, the groups, get_all_permissions) cost several times the rest of the request.
_CUENTA_SQL = """
SELECT 'dosfa', NULL
 WHERE EXISTS (SELECT 1 FROM {totp} d WHERE d.user_id = %s AND d.confirmed)
    OR EXISTS (SELECT 1 FROM {codigo} d WHERE d.user_id = %s AND d.confirmed)
UNION ALL
SELECT 'rol', g.name FROM {grupos} ug JOIN {grupo} g ON g.id = ug.group_id
 WHERE ug.usuario_id = %s
UNION ALL
SELECT 'permiso', p.codename FROM {permiso} p
 WHERE %s
    OR p.id IN (SELECT up.permission_id FROM {propios} up WHERE up.usuario_id = %s)
    OR p.id IN (SELECT gp.permission_id FROM {de_grupos} gp
                  JOIN {grupos} ug ON ug.group_id = gp.group_id
                 WHERE ug.usuario_id = %s)
"""


def _cuenta(usuario: Usuario) -> tuple[bool, list[str], list[str]]:
    """(two_factor_enabled, roles, permissions) of the user, in one statement."""
    connection = connections[router.db_for_read(Usuario)]
    sql = sentencia(
        connection,
        _CUENTA_SQL,
        lambda q: {
            "totp": q(DispositivoTOTP._meta.db_table),
            "codigo": q(DispositivoCodigo._meta.db_table),
            "grupos": q(Usuario.groups.through._meta.db_table),
            "grupo": q(Group._meta.db_table),
            "permiso": q(Permission._meta.db_table),
            "propios": q(Usuario.user_permissions.through._meta.db_table),
            "de_grupos": q(Group.permissions.through._meta.db_table),
        },
    )
    pk = usuario.pk
    with cursor_preparado(connection.alias) as cursor:
        cursor.execute(sql, [pk, pk, pk, usuario.is_superuser, pk, pk])
        filas = cursor.fetchall()
    roles = sorted(nombre for tipo, nombre in filas if tipo == "rol")
    # ModelBackend gives an inactive user no permissions.
    permisos = {nombre for tipo, nombre in filas if tipo == "permiso" and usuario.is_active}
    return any(tipo == "dosfa" for tipo, _ in filas), roles, sorted(permisos)


def usuario_y_accesos(usuario: Usuario) -> dict:
    """The seed's user (with `two_factor_enabled`), roles and permissions."""
    dosfa_activo, roles, permisos = _cuenta(usuario)
    return {
        "user": {**usuario_perfil(usuario), "two_factor_enabled": dosfa_activo},
        "roles": roles,
        "permissions": permisos,
    }


def sesion_datos(usuario: Usuario, token_plano: str) -> dict:
    datos = usuario_y_accesos(usuario)
    return {
        "user": datos["user"],
        "token": token_plano,
        "roles": datos["roles"],
        "permissions": datos["permissions"],
    }


def fecha(valor) -> str | None:
    """ISO 8601 in UTC with microseconds and `Z`, as the seed writes `created_at`."""
    if valor is None:
        return None
    return valor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bloqueado(espera: int) -> exceptions.Throttled:
    exc = exceptions.Throttled(wait=espera)
    exc.envelope_message = DEMASIADOS_INTENTOS
    return exc


# --- Base view ----------------------------------------------------------------------------------


class AuthAPIView(APIView):
    """Envelope D, JSON only (bounded), Spanish messages, Bearer authentication (any kind)."""

    envelope = ENVELOPE_D
    content_negotiation_class = IgnoreAccept
    metadata_class = None
    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    throttle_classes = []

    def dispatch(self, request, *args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
            "CONTENT_LENGTH"
        ):
            raise ApiError(411, self.envelope.message_for(411))
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.UnsupportedMediaType):
            # The contract: a wrong content type is a 400 in the family's envelope.
            exc = ApiError(400, self.envelope.message_for(415))
        return super().handle_exception(exc)

    def datos(self, serializer_class) -> dict:
        body = self.request.data
        if not isinstance(body, dict):
            raise ApiError(400, self.envelope.message_for(400))
        serializer = serializer_class(data=body)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def ok(self, data=None, message: str = "", status_code: int = 200) -> Response:
        return Response(
            ENVELOPE_D.success(data=data, message=message, status_code=status_code),
            status=status_code,
        )


class PublicAuthAPIView(AuthAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]


def _requiere_2fa(intento) -> dict:
    return {
        "success": True,
        "requires_two_factor": True,
        "message": CODIGO_TOTP if intento.metodo == dosfa.TOTP else CODIGO_ENVIADO,
        "sent_to": intento.enviado_a,
        "method": intento.metodo,
        "temp_token": intento.temp_token,
    }


# --- Examples -----------------------------------------------------------------------------------

_USUARIO = {
    "id": 1,
    "name": "Juan Pérez",
    "email": "usuario@example.com",
    "phone": "+521234567890",
    "avatar": None,
    "is_active": True,
}
_LOGIN_OK = {
    "success": True,
    "message": LOGIN_EXITOSO,
    "data": {
        "user": {**_USUARIO, "two_factor_enabled": False},
        "token": "1|xxxxxxxxxxxxx",
        "roles": ["user"],
        "permissions": ["edit-profile", "view-profile"],
    },
}
_LOGIN_2FA = {
    "success": True,
    "requires_two_factor": True,
    "message": CODIGO_ENVIADO,
    "sent_to": "usuario@example.com",
    "method": "email",
    "temp_token": "temp_abc123",
}


def _ej(nombre, valor, *, status="200", request=False) -> OpenApiExample:
    if request:
        return OpenApiExample(nombre, value=valor, request_only=True)
    return OpenApiExample(nombre, value=valor, response_only=True, status_codes=[status])


def _error(status: int, message: str, errors=None) -> OpenApiExample:
    body = {"success": False, "message": message}
    if errors:
        body["errors"] = errors
    return _ej(f"{status} {message[:30]}", body, status=str(status))


# --- Serializers --------------------------------------------------------------------------------


class UsuarioPerfilSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    avatar = serializers.CharField(allow_null=True)
    is_active = serializers.BooleanField()


class UsuarioCompletoSerializer(UsuarioPerfilSerializer):
    two_factor_enabled = serializers.BooleanField()


class SesionDatosSerializer(serializers.Serializer):
    user = UsuarioCompletoSerializer()
    token = serializers.CharField(help_text='User token "<id>|<secret>", shown once.')
    roles = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())


class RequiereDosfaSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    requires_two_factor = serializers.BooleanField()
    message = serializers.CharField()
    sent_to = serializers.CharField(allow_null=True)
    method = serializers.ChoiceField(choices=["totp", "email", "sms"])
    temp_token = serializers.CharField()


class SesionAppSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    app_name = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.CharField()


class SesionListadaSerializer(serializers.Serializer):
    id = serializers.CharField(
        help_text='"<id>" for an app session, "token-<id>" for a token, "oauth-<id>" for the '
        "tokens of an OAuth2 client."
    )
    type = serializers.ChoiceField(choices=["app", "token", "oauth"])
    app_name = serializers.CharField()
    ip_address = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.CharField()
    last_used_at = serializers.CharField(allow_null=True)


def inline_reenvio():
    return inline_serializer(
        name="AuthResendRespuesta",
        fields={
            "success": serializers.BooleanField(),
            "message": serializers.CharField(),
            "sent_to": serializers.CharField(),
            "method": serializers.ChoiceField(choices=["email", "sms"]),
        },
    )


def inline_perfil():
    return inline_serializer(
        name="AuthProfileRespuesta",
        fields={
            "success": serializers.BooleanField(),
            "data": inline_serializer(
                name="AuthProfileDatos", fields={"user": UsuarioPerfilSerializer()}
            ),
        },
    )


def inline_usuario():
    return inline_serializer(
        name="AuthUserDatos",
        fields={
            "user": UsuarioCompletoSerializer(),
            "roles": serializers.ListField(child=serializers.CharField()),
            "permissions": serializers.ListField(child=serializers.CharField()),
        },
    )


# --- Views --------------------------------------------------------------------------------------


class LoginView(PublicAuthAPIView):
    class AuthLoginInput(serializers.Serializer):
        login = serializers.CharField(max_length=254, help_text="Email or phone number.")
        password = serializers.CharField(max_length=1024, trim_whitespace=False)

    @extend_schema(
        operation_id="auth_login",
        summary="Inicia sesión con email/teléfono y contraseña",
        description="Without 2FA the answer carries the user token. With 2FA it carries "
        "`requires_two_factor` and a `temp_token` for `/api/auth/2fa/verify`; for `email` and "
        "`sms` the code has been sent to `sent_to`, for `totp` (`sent_to: null`) the user types "
        "their app's code. Failed sign-ins are counted per account and per IP (429 after "
        "SSO_MAX_FALLOS).",
        tags=["Auth"],
        request=AuthLoginInput,
        responses=auth_responses(
            "AuthLogin",
            SesionDatosSerializer(),
            {401: CREDENCIALES_INVALIDAS, 429: DEMASIADOS_INTENTOS, 500: ENVIO_FALLIDO},
            alternativa=RequiereDosfaSerializer(),
        ),
        examples=[
            _ej(
                "Solicitud",
                {"login": "usuario@example.com", "password": "password123"},
                request=True,
            ),
            _ej("Sin 2FA", _LOGIN_OK),
            _ej("Con 2FA", _LOGIN_2FA),
            _error(401, CREDENCIALES_INVALIDAS),
            _error(422, "Error de validación.", {"password": ["Este campo es obligatorio."]}),
        ],
    )
    def post(self, request):
        datos = self.datos(self.AuthLoginInput)
        ip = client_ip(request)
        try:
            usuario = acceso_login(identificador=datos["login"], password=datos["password"], ip=ip)
        except AccesoBloqueado as exc:
            raise _bloqueado(exc.espera) from exc
        except CredencialesInvalidas as exc:
            raise ApiError(401, CREDENCIALES_INVALIDAS) from exc
        if dosfa.dosfa_requerido(usuario=usuario):
            try:
                intento = dosfa.dosfa_iniciar(usuario=usuario, ip=ip)
            except dosfa.EnvioFallido as exc:
                raise ApiError(500, ENVIO_FALLIDO) from exc
            except dosfa.MetodoNoDisponible as exc:
                raise ApiError(403, METODO_NO_DISPONIBLE) from exc
            return Response(_requiere_2fa(intento))
        acceso_completado(usuario=usuario)
        _, plano = token_emitir(usuario=usuario, ip=ip, al_entrar=True)
        return self.ok(sesion_datos(usuario, plano), LOGIN_EXITOSO)


class VerificarDosfaView(PublicAuthAPIView):
    class AuthVerifyInput(serializers.Serializer):
        temp_token = serializers.CharField(max_length=100)
        code = serializers.CharField(
            max_length=32, help_text="6 digits (email, SMS, TOTP) or a recovery code."
        )

    @extend_schema(
        operation_id="auth_2fa_verify",
        summary="Verifica el código de dos factores",
        description="Codes are single-use and valid 10 minutes; a `temp_token` is burnt after "
        "5 wrong codes (401). A TOTP user may type one of their recovery codes instead.",
        tags=["Auth"],
        request=AuthVerifyInput,
        responses=auth_responses(
            "AuthVerify",
            SesionDatosSerializer(),
            {401: TEMP_TOKEN_INVALIDO, 422: CODIGO_INVALIDO, 429: DEMASIADOS_INTENTOS},
        ),
        examples=[
            _ej("Solicitud", {"temp_token": "temp_abc123", "code": "123456"}, request=True),
            _ej("Respuesta", _LOGIN_OK),
            _error(401, TEMP_TOKEN_INVALIDO),
            _error(
                422,
                CODIGO_INVALIDO,
                {"code": ["Código inválido o vencido. Intentos restantes: 4."]},
            ),
        ],
    )
    def post(self, request):
        datos = self.datos(self.AuthVerifyInput)
        try:
            usuario = dosfa.dosfa_verificar(temp_token=datos["temp_token"], code=datos["code"])
        except dosfa.IntentoQuemado as exc:
            raise ApiError(401, TEMP_TOKEN_QUEMADO) from exc
        except dosfa.IntentoInvalido as exc:
            raise ApiError(401, TEMP_TOKEN_INVALIDO) from exc
        except dosfa.CodigoIncorrecto as exc:
            detalle = f"Código inválido o vencido. Intentos restantes: {exc.restantes}."
            raise ApiError(422, CODIGO_INVALIDO, {"code": [detalle]}) from exc
        except AccesoBloqueado as exc:
            raise _bloqueado(exc.espera) from exc
        _, plano = token_emitir(usuario=usuario, ip=client_ip(request), al_entrar=True)
        return self.ok(sesion_datos(usuario, plano), LOGIN_EXITOSO)


class ReenviarDosfaView(PublicAuthAPIView):
    class AuthResendInput(serializers.Serializer):
        temp_token = serializers.CharField(max_length=100)
        method = serializers.ChoiceField(choices=["email", "sms"])

    @extend_schema(
        operation_id="auth_2fa_resend",
        summary="Reenvía el código de verificación",
        description="A new code by `email` or `sms` (one the user has); earlier codes of the "
        "attempt stop working. At most TWO_FACTOR_MAX_SENDS codes per attempt, "
        "TWO_FACTOR_RESEND_SECONDS apart (429 with Retry-After).",
        tags=["Auth"],
        request=AuthResendInput,
        responses=auth_responses(
            "AuthResend",
            None,
            {
                401: TEMP_TOKEN_INVALIDO,
                422: METODO_NO_DISPONIBLE,
                429: REENVIO_LIMITADO,
                500: ENVIO_FALLIDO,
            },
            alternativa=inline_reenvio(),
        ),
        examples=[
            _ej("Solicitud", {"temp_token": "temp_abc123", "method": "email"}, request=True),
            _ej(
                "Respuesta",
                {
                    "success": True,
                    "message": CODIGO_ENVIADO,
                    "sent_to": "usuario@example.com",
                    "method": "email",
                },
            ),
            _error(429, REENVIO_LIMITADO),
        ],
    )
    def post(self, request):
        datos = self.datos(self.AuthResendInput)
        try:
            intento = dosfa.dosfa_reenviar(temp_token=datos["temp_token"], metodo=datos["method"])
        except dosfa.IntentoInvalido as exc:
            raise ApiError(401, TEMP_TOKEN_INVALIDO) from exc
        except dosfa.MetodoNoDisponible as exc:
            raise ApiError(422, METODO_NO_DISPONIBLE, {"method": [METODO_NO_DISPONIBLE]}) from exc
        except dosfa.ReenvioLimitado as exc:
            throttled = exceptions.Throttled(wait=exc.espera)
            throttled.envelope_message = REENVIO_LIMITADO
            raise throttled from exc
        except dosfa.EnvioFallido as exc:
            raise ApiError(500, ENVIO_FALLIDO) from exc
        return Response(
            {
                "success": True,
                "message": CODIGO_ENVIADO,
                "sent_to": intento.enviado_a,
                "method": intento.metodo,
            }
        )


class RegistroView(PublicAuthAPIView):
    class AuthRegisterInput(serializers.Serializer):
        name = serializers.CharField(max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
        phone = serializers.RegexField(
            r"^\+?[\d\s().-]{6,30}$", required=False, allow_blank=True, max_length=40
        )
        password = serializers.CharField(max_length=1024, trim_whitespace=False)
        password_confirmation = serializers.CharField(max_length=1024, trim_whitespace=False)

    @extend_schema(
        operation_id="auth_register",
        summary="Registra una cuenta de cliente",
        description="Open or closed by REGISTRATION_OPEN (403 when closed). `email` or `phone` "
        "is required. The account is a customer's, never staff, and the answer signs it in.",
        tags=["Auth"],
        request=AuthRegisterInput,
        responses=auth_responses(
            "AuthRegister", SesionDatosSerializer(), {403: REGISTRO_CERRADO}, status=201
        ),
        examples=[
            _ej(
                "Solicitud",
                {
                    "name": "Juan Pérez",
                    "email": "nuevo@example.com",
                    "phone": "+521234567890",
                    "password": "password123",
                    "password_confirmation": "password123",
                },
                request=True,
            ),
            _ej("Respuesta", {**_LOGIN_OK, "message": USUARIO_REGISTRADO}, status="201"),
            _error(403, REGISTRO_CERRADO),
            _error(422, "Error de validación.", {"email": ["El email ya está registrado."]}),
        ],
    )
    def post(self, request):
        datos = self.datos(self.AuthRegisterInput)
        try:
            usuario = usuario_registrar(
                name=datos["name"],
                email=datos.get("email", ""),
                phone=datos.get("phone", ""),
                password=datos["password"],
                password_confirmation=datos["password_confirmation"],
            )
        except RegistroCerrado as exc:
            raise ApiError(403, REGISTRO_CERRADO) from exc
        _, plano = token_emitir(usuario=usuario, ip=client_ip(request), al_entrar=True)
        return self.ok(sesion_datos(usuario, plano), USUARIO_REGISTRADO, status_code=201)


class LogoutView(AuthAPIView):
    @extend_schema(
        operation_id="auth_logout",
        summary="Cierra sesión y revoca el token actual",
        description="The Bearer token stops working: a user token with the app sessions "
        "registered with it, an OAuth2 access token with its refresh token. A JWT cannot be "
        "revoked alone: it expires.",
        tags=["Auth"],
        request={"application/json": OpenApiTypes.OBJECT},
        responses=auth_responses("AuthLogout", None, {}),
        examples=[
            _ej("Solicitud (sin cuerpo)", {}, request=True),
            _ej("Respuesta", {"success": True, "message": SESION_CERRADA, "data": None}),
        ],
    )
    def post(self, request):
        if isinstance(request.auth, TokenUsuario):
            sesiones_terminar_token(token=request.auth)
        elif isinstance(request.auth, AbstractAccessToken):
            token_oauth_revocar(token=request.auth)
        return self.ok(None, SESION_CERRADA)


class PerfilView(AuthAPIView):
    permission_classes = [IsAuthenticated, requiere_scope("profile", "read")]

    @extend_schema(
        operation_id="auth_profile",
        summary="Perfil del usuario autenticado",
        tags=["Auth"],
        responses=auth_responses("AuthProfile", None, {}, alternativa=inline_perfil()),
        examples=[_ej("Respuesta", {"success": True, "data": {"user": _USUARIO}})],
    )
    def get(self, request):
        return Response({"success": True, "data": {"user": usuario_perfil(request.user)}})


class UsuarioView(AuthAPIView):
    permission_classes = [IsAuthenticated, requiere_scope("profile", "read")]

    @extend_schema(
        operation_id="auth_user",
        summary="El usuario autenticado, con roles y permisos",
        tags=["Auth"],
        responses=auth_responses("AuthUser", inline_usuario(), {}),
        examples=[
            _ej(
                "Respuesta",
                {
                    "success": True,
                    "message": "",
                    "data": {
                        "user": {**_USUARIO, "two_factor_enabled": False},
                        "roles": ["user"],
                        "permissions": ["edit-profile", "view-profile"],
                    },
                },
            )
        ],
    )
    def get(self, request):
        return self.ok(usuario_y_accesos(request.user))


class SesionesAppView(AuthAPIView):
    permission_classes = [IsAuthenticated, requiere_scope("sessions")]

    class AppSessionRegisterInput(serializers.Serializer):
        app_name = serializers.CharField(max_length=150)
        ip_address = serializers.IPAddressField(required=False, allow_blank=True, allow_null=True)
        user_agent = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        operation_id="app_sessions_list",
        summary="Sesiones activas del usuario",
        description="The caller's own live sessions: app sessions (`id` as registered), "
        'user tokens (`id` "token-<id>") and OAuth2 clients holding live tokens (`id` '
        '"oauth-<client id>", `last_used_at` when it last got a token). Never another '
        "user's.",
        tags=["Auth"],
        responses=auth_responses(
            "AppSessionsList", serializers.ListSerializer(child=SesionListadaSerializer()), {}
        ),
        examples=[
            _ej(
                "Respuesta",
                {
                    "success": True,
                    "message": SESIONES_ACTIVAS,
                    "data": [
                        {
                            "id": 1,
                            "type": "app",
                            "app_name": "Creador de Sitios Web",
                            "ip_address": "203.0.113.7",
                            "user_agent": "Mozilla/5.0...",
                            "is_active": True,
                            "created_at": "2025-10-13T08:31:58.000000Z",
                            "last_used_at": None,
                        },
                        {
                            "id": "token-12",
                            "type": "token",
                            "app_name": "API",
                            "ip_address": "203.0.113.7",
                            "user_agent": "",
                            "is_active": True,
                            "created_at": "2025-10-13T08:30:02.000000Z",
                            "last_used_at": "2025-10-13T08:31:58.000000Z",
                        },
                    ],
                },
            )
        ],
    )
    def get(self, request):
        sesiones = sesiones_de_usuario(usuario=request.user)
        for sesion in sesiones:
            sesion["created_at"] = fecha(sesion["created_at"])
            sesion["last_used_at"] = fecha(sesion["last_used_at"])
        return self.ok(sesiones, SESIONES_ACTIVAS)


class RegistrarSesionAppView(AuthAPIView):
    permission_classes = [IsAuthenticated, requiere_scope("sessions")]

    @extend_schema(
        operation_id="app_sessions_register",
        summary="Registra que el usuario inició sesión en tu aplicación",
        tags=["Auth"],
        request=SesionesAppView.AppSessionRegisterInput,
        responses=auth_responses("AppSessionsRegister", SesionAppSerializer(), {}, status=201),
        examples=[
            _ej(
                "Solicitud",
                {
                    "app_name": "Creador de Sitios Web",
                    "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0...",
                },
                request=True,
            ),
            _ej(
                "Respuesta",
                {
                    "success": True,
                    "message": SESION_APP_REGISTRADA,
                    "data": {
                        "id": 1,
                        "user_id": 1,
                        "app_name": "Creador de Sitios Web",
                        "is_active": True,
                        "created_at": "2025-10-13T08:31:58.000000Z",
                    },
                },
                status="201",
            ),
        ],
    )
    def post(self, request):
        datos = self.datos(SesionesAppView.AppSessionRegisterInput)
        token = request.auth if isinstance(request.auth, TokenUsuario) else None
        sesion = sesion_app_registrar(
            usuario=request.user,
            app_name=datos["app_name"],
            ip_address=datos.get("ip_address") or None,
            user_agent=datos.get("user_agent") or "",
            token=token,
        )
        data = {
            "id": sesion.pk,
            "user_id": sesion.usuario_id,
            "app_name": sesion.app_name,
            "is_active": sesion.is_active,
            "created_at": fecha(sesion.creado),
        }
        return self.ok(data, SESION_APP_REGISTRADA, status_code=201)


class SesionAppView(AuthAPIView):
    permission_classes = [IsAuthenticated, requiere_scope("sessions")]

    @extend_schema(
        operation_id="app_sessions_delete",
        summary="Termina una de las sesiones del usuario",
        description='`id` is an app session\'s id, "token-<id>" (the token is revoked) or '
        '"oauth-<id>" (every token of that OAuth2 client is revoked). Another user\'s '
        "session is a 404, as one that does not exist.",
        tags=["Auth"],
        parameters=[
            OpenApiParameter(
                "id",
                str,
                OpenApiParameter.PATH,
                description='"<id>", "token-<id>" or "oauth-<id>".',
            )
        ],
        responses=auth_responses("AppSessionsDelete", None, {404: SESION_NO_ENCONTRADA}),
        examples=[
            _ej("Respuesta", {"success": True, "message": SESION_TERMINADA, "data": None}),
            _error(404, SESION_NO_ENCONTRADA),
        ],
    )
    def delete(self, request, id: str):
        try:
            sesion_terminar(usuario=request.user, id_sesion=id)
        except SesionNoEncontrada as exc:
            raise ApiError(404, SESION_NO_ENCONTRADA) from exc
        return self.ok(None, SESION_TERMINADA)
