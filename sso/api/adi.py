"""SSO/ADI (seed 000, permission `sso.adi`): system tokens and single-use access requests.

- `POST /api/SSO/ADI/setToken` creates a system with its ADI token, or updates its state and,
  with `update_token: "S"`, rotates the token. The token is in the answer once, never again.
- `POST /api/SSO/ADI/generateToken` issues a signed, 5-minute, single-use access request
  (`base64_encoded`; format in `sso.adi`). An unknown or inactive system or a wrong ADI token
  answers 403 (the consumer is authenticated; the system's credential is refused), with one
  message for all three so the answer reveals nothing about which systems exist.
- `POST /api/SSO/ADI/Token` validates and consumes a request. Tampering, a malformed value,
  expiry or replay answer 401 in full envelope A with `data: {authenticated: false, message}`;
  a missing, blank or over-long `token` field is a 422 like any invalid field.
"""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers

from ..adi import (
    MAX_WIRE_LENGTH,
    SistemaInvalido,
    SolicitudInvalida,
    sistema_adi_registrar,
    solicitud_adi_generar,
    solicitud_adi_validar,
)
from .consumo import ConsumoAPIView
from .envelopes import ApiError
from .schema import ERROR_A, UNAUTHORIZED_A, consumo_responses

TAGS = ["SSO"]
MSG_CREADO = "Registro creado correctamente."
MSG_ROTADO = "Token actualizado correctamente."
MSG_ACTUALIZADO = "Registro actualizado correctamente."
MSG_GENERADA = "Solicitud de acceso generada."
MSG_SISTEMA_INVALIDO = "Sistema o token ADI inválido."
MSG_AUTENTICADO = "Usuario Autenticado."
MSG_SOLICITUD_INVALIDA = "Solicitud inválida o vencida."


class SetTokenView(ConsumoAPIView):
    permiso = "sso.adi"

    @extend_schema_serializer(component_name="AdiSetTokenSolicitud")
    class InputSerializer(serializers.Serializer):
        sistema = serializers.SlugField(max_length=60, help_text="The system's alias.")
        estado = serializers.ChoiceField(choices=["activo", "inactivo"])
        update_token = serializers.ChoiceField(
            choices=["S", "N"], help_text="`S` rotates the token of an existing system."
        )

    @extend_schema_serializer(component_name="AdiSetTokenDatos")
    class OutputSerializer(serializers.Serializer):
        alias_sistema = serializers.CharField()
        message = serializers.CharField()
        token_generado = serializers.CharField(
            allow_null=True, help_text="The new ADI token, shown only here; null if unchanged."
        )

    @extend_schema(
        operation_id="sso_adi_set_token",
        summary="Token de autenticación ADI",
        description=(
            "Creates the system (always with a new token: `Registro creado correctamente.`) or "
            "updates its `estado`; with `update_token: S` it also rotates the token (`Token "
            "actualizado correctamente.`), else `token_generado` is null (`Registro actualizado "
            "correctamente.`). The token is stored only as its SHA-256."
        ),
        tags=TAGS,
        request=InputSerializer,
        responses=consumo_responses("AdiSetToken", OutputSerializer()),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={"sistema": "factura_profesional", "estado": "activo", "update_token": "S"},
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "data": {
                        "alias_sistema": "factura_profesional",
                        "message": MSG_CREADO,
                        "token_generado": "<string del token generado para consumo del SSO>",
                    },
                    "status": "ok",
                    "message": MSG_CREADO,
                    "code": 200,
                    "id_bitacora_log": 736014,
                },
            ),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        registro = sistema_adi_registrar(
            alias=values["sistema"],
            activo=values["estado"] == "activo",
            rotar=values["update_token"] == "S",  # noqa: S105 - a yes/no flag
        )
        if registro.creado:
            message = MSG_CREADO
        elif registro.token is not None:
            message = MSG_ROTADO
        else:
            message = MSG_ACTUALIZADO
        data = {
            "alias_sistema": registro.sistema.alias,
            "message": message,
            "token_generado": registro.token,
        }
        return self.ok(data, message)


class GenerateTokenView(ConsumoAPIView):
    permiso = "sso.adi"

    @extend_schema_serializer(component_name="AdiGenerateTokenSolicitud")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True, default="", max_length=254)
        sistema = serializers.CharField(max_length=60)
        token = serializers.CharField(max_length=256, help_text="The system's ADI token.")

    @extend_schema_serializer(component_name="AdiGenerateTokenDatos")
    class OutputSerializer(serializers.Serializer):
        base64_encoded = serializers.CharField()
        message = serializers.CharField()

    @extend_schema(
        operation_id="sso_adi_generate_token",
        summary="Hash para Autenticar ADI",
        description=(
            "A signed access request for the user, valid 5 minutes and once. Wire format: "
            "base64url (padding optional) of `<canonical JSON>:<signature>`, the JSON being "
            '`{"e": email, "exp": unix seconds, "n": nonce, "s": system, "u": username, '
            '"v": 1}` and the signature HMAC-SHA256 (django.core.signing, its own salt). '
            "Clients should treat it as opaque. A wrong ADI token or an unknown or inactive "
            "system answers 403."
        ),
        tags=TAGS,
        request=InputSerializer,
        responses={
            **consumo_responses("AdiGenerateToken", OutputSerializer()),
            403: OpenApiResponse(
                ERROR_A,
                "The consumer lacks `sso.adi`, or the system is unknown or inactive, or the ADI "
                "token is wrong.",
                examples=[
                    OpenApiExample(
                        "403",
                        response_only=True,
                        status_codes=["403"],
                        value={
                            "data": None,
                            "status": "error",
                            "message": MSG_SISTEMA_INVALIDO,
                            "code": 403,
                            "id_bitacora_log": 778,
                        },
                    )
                ],
            ),
        },
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "username": "jmora",
                    "email": "jmora@example.com",
                    "sistema": "factura_profesional",
                    "token": "<token ADI del sistema>",
                },
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "data": {"base64_encoded": "<base64 generado>", "message": MSG_GENERADA},
                    "status": "ok",
                    "message": MSG_GENERADA,
                    "code": 200,
                    "id_bitacora_log": 777,
                },
            ),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        try:
            wire = solicitud_adi_generar(
                alias=values["sistema"],
                token=values["token"],
                username=values["username"],
                email=values["email"],
            )
        except SistemaInvalido:
            raise ApiError(403, MSG_SISTEMA_INVALIDO) from None
        return self.ok({"base64_encoded": wire, "message": MSG_GENERADA}, MSG_GENERADA)


class ValidarTokenView(ConsumoAPIView):
    permiso = "sso.adi"

    @extend_schema_serializer(component_name="AdiTokenSolicitud")
    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(
            max_length=MAX_WIRE_LENGTH, help_text="`base64_encoded` from generateToken."
        )

    @extend_schema_serializer(component_name="AdiTokenDatos")
    class OutputSerializer(serializers.Serializer):
        authenticated = serializers.BooleanField()
        username = serializers.CharField()
        email = serializers.CharField()
        sistema = serializers.CharField()
        message = serializers.CharField()

    @extend_schema(
        operation_id="sso_adi_token",
        summary="Validar SSO ADI",
        description=(
            "Validates and consumes an access request. Tampered, malformed, expired or already "
            "used: 401 in envelope A with `data: {authenticated: false, message}` (this 401 is "
            "not the consumer-header one, which has only `message`)."
        ),
        tags=TAGS,
        request=InputSerializer,
        responses={
            **consumo_responses("AdiToken", OutputSerializer()),
            401: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="AdiTokenNoAutenticado",
                    serializers=[ERROR_A, UNAUTHORIZED_A],
                    resource_type_field_name=None,
                ),
                "Invalid, expired or replayed request (full envelope); or missing/wrong consumer "
                'headers (`{"message": "Credenciales de consumo inválidas"}` only).',
                examples=[
                    OpenApiExample(
                        "Solicitud inválida",
                        response_only=True,
                        status_codes=["401"],
                        value={
                            "data": {"authenticated": False, "message": MSG_SOLICITUD_INVALIDA},
                            "status": "error",
                            "message": MSG_SOLICITUD_INVALIDA,
                            "code": 401,
                            "id_bitacora_log": 781,
                        },
                    ),
                    OpenApiExample(
                        "Credenciales de consumo",
                        response_only=True,
                        status_codes=["401"],
                        value={"message": "Credenciales de consumo inválidas"},
                    ),
                ],
            ),
        },
        examples=[
            OpenApiExample("Solicitud", request_only=True, value={"token": "<base64 generado>"}),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "data": {
                        "authenticated": True,
                        "username": "jmora",
                        "email": "jmora@example.com",
                        "sistema": "factura_profesional",
                        "message": MSG_AUTENTICADO,
                    },
                    "status": "ok",
                    "message": MSG_AUTENTICADO,
                    "code": 200,
                    "id_bitacora_log": 780,
                },
            ),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            solicitud = solicitud_adi_validar(wire=params.validated_data["token"])
        except SolicitudInvalida:
            data = {"authenticated": False, "message": MSG_SOLICITUD_INVALIDA}
            raise ApiError(401, MSG_SOLICITUD_INVALIDA, data=data) from None
        data = {
            "authenticated": True,
            "username": solicitud.username,
            "email": solicitud.email,
            "sistema": solicitud.sistema,
            "message": MSG_AUTENTICADO,
        }
        return self.ok(data, MSG_AUTENTICADO)
