"""POST /api/SSO/password/forgot and POST /api/SSO/password/reset (seed 000, permission `sso`)."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers

from ..bitacora import client_ip
from ..recuperacion import (
    MENSAJE_NO_COINCIDEN,
    MENSAJE_PRODUCTO_DESCONOCIDO,
    MENSAJE_TOKEN_INVALIDO,
    TokenResetInvalido,
    password_olvido_solicitar,
    password_restablecer,
    sistema_para_recuperacion,
)
from .consumo import ConsumoAPIView
from .envelopes import ApiError
from .schema import ERROR_A, consumo_responses

MENSAJE_OLVIDO = (
    "Si el correo pertenece a una cuenta con acceso al producto, recibirá un enlace para "
    "restablecer la contraseña."
)
MENSAJE_RESTABLECIDA = "Contraseña restablecida."


def _ok_example(message: str) -> OpenApiExample:
    return OpenApiExample(
        "Respuesta",
        response_only=True,
        status_codes=["200"],
        value={
            "data": None,
            "status": "ok",
            "message": message,
            "code": 200,
            "id_bitacora_log": 2010959,
        },
    )


def _error_example(name: str, message: str, errors: dict) -> dict:
    return OpenApiExample(
        name,
        response_only=True,
        status_codes=["422"],
        value={
            "data": None,
            "status": "error",
            "message": message,
            "code": 422,
            "errors": errors,
            "id_bitacora_log": 2010960,
        },
    )


def _responses(name: str, errores_422: list) -> dict:
    responses = consumo_responses(name, serializers.JSONField(allow_null=True, default=None))
    responses[422] = OpenApiResponse(ERROR_A, "Invalid fields or token.", examples=errores_422)
    return responses


_PRODUCTO_DESCONOCIDO = _error_example(
    "Producto desconocido", "Datos inválidos.", {"product": [MENSAJE_PRODUCTO_DESCONOCIDO]}
)


class PasswordForgotView(ConsumoAPIView):
    """Same answer for every email: whether a mail went out is never said."""

    permiso = "sso"

    @extend_schema_serializer(component_name="PasswordForgotSolicitud")
    class InputSerializer(serializers.Serializer):
        product = serializers.CharField(max_length=60)
        email = serializers.EmailField(max_length=254)
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        operation_id="sso_password_forgot",
        summary="Solicitar el restablecimiento de la contraseña",
        description=(
            "Envía por correo un enlace de restablecimiento (la URL de restablecimiento del "
            "producto con `id` y `token`) si el correo pertenece a un usuario activo con acceso "
            "al producto. La respuesta es la misma en cualquier caso."
        ),
        tags=["SSO"],
        request=InputSerializer,
        responses=_responses("PasswordForgot", [_PRODUCTO_DESCONOCIDO]),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={"product": "evktzdcpbcfbd", "email": "maegan64@example.com"},
            ),
            _ok_example(MENSAJE_OLVIDO),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        sistema = sistema_para_recuperacion(alias=params.validated_data["product"])
        password_olvido_solicitar(
            sistema=sistema, email=params.validated_data["email"], ip=client_ip(request)
        )
        return self.ok(None, MENSAJE_OLVIDO)


class PasswordResetView(ConsumoAPIView):
    permiso = "sso"

    @extend_schema_serializer(component_name="PasswordResetSolicitud")
    class InputSerializer(serializers.Serializer):
        product = serializers.CharField(max_length=60)
        id = serializers.CharField(max_length=40)
        token = serializers.CharField(max_length=100)
        password = serializers.CharField(max_length=512, trim_whitespace=False)
        password_confirmation = serializers.CharField(max_length=512, trim_whitespace=False)
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        operation_id="sso_password_reset",
        summary="Restablecer la contraseña con el enlace recibido",
        description=(
            "El token vence y sirve una sola vez. La contraseña pasa los validadores del "
            "portal. Al restablecerla se revocan todos los tokens del usuario."
        ),
        tags=["SSO"],
        request=InputSerializer,
        responses=_responses(
            "PasswordReset",
            [
                _error_example(
                    "Token inválido o vencido",
                    MENSAJE_TOKEN_INVALIDO,
                    {"token": [MENSAJE_TOKEN_INVALIDO]},
                ),
                _error_example(
                    "Contraseñas distintas",
                    "Datos inválidos.",
                    {"password_confirmation": [MENSAJE_NO_COINCIDEN]},
                ),
                _error_example(
                    "Contraseña débil",
                    "Datos inválidos.",
                    {
                        "password": [
                            "La contraseña es demasiado corta. Debe contener al menos "
                            "8 caracteres.",
                            "Esta contraseña es demasiado común.",
                        ]
                    },
                ),
                _PRODUCTO_DESCONOCIDO,
            ],
        ),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "product": "jlwnplitvwegmkx",
                    "id": "MTM5",
                    "token": "cf0x4k-3b1f6e0c7d2a9e8b5c4d3f2a1b0c9d8e",
                    "password": "}yf,FS<${nB)4s]]S",
                    "password_confirmation": "}yf,FS<${nB)4s]]S",
                },
            ),
            _ok_example(MENSAJE_RESTABLECIDA),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        sistema = sistema_para_recuperacion(alias=data["product"])
        try:
            password_restablecer(
                sistema=sistema,
                uid=data["id"],
                token=data["token"],
                password=data["password"],
                password_confirmation=data["password_confirmation"],
            )
        except TokenResetInvalido:
            raise ApiError(
                422, MENSAJE_TOKEN_INVALIDO, {"token": [MENSAJE_TOKEN_INVALIDO]}
            ) from None
        return self.ok(None, MENSAJE_RESTABLECIDA)
