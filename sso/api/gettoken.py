"""POST /v2/auth/gettoken (seed 001): a 2-hour JWT for an integration, in envelope B.

No consumer headers: the caller is the user, by email (or login), password and the alias of
their virtual operator. Bad credentials of any kind — unknown user, wrong password, inactive
user, another operator — answer the seed's 400 `IdentificationDoesNotMatch` (401 is kept for
an expired or invalid token on the Bearer endpoints, as the seed says); the lockout of
SSO/access answers 429. Every call writes one audit row, with the password masked.
"""

from datetime import UTC

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny

from ..acceso import AccesoBloqueado, CredencialesInvalidas
from ..bitacora import client_ip
from ..jwt import jwt_solicitar
from .consumo import ConsumoAPIView
from .envelopes import ENVELOPE_B, ApiError

IDENTIFICACION_NO_COINCIDE = "IdentificationDoesNotMatch"


def expires_iso(valor) -> str:
    """ISO 8601 in UTC with a `Z`, as the seed writes it."""
    return valor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ErrorTokenEntradaSerializer(serializers.Serializer):
    Field = serializers.CharField(allow_null=True)
    Code = serializers.CharField()
    Description = serializers.CharField(allow_null=True)
    ExplanationValues = serializers.ListField(child=serializers.JSONField())


def _envelope_b(name: str, fields: dict | None):
    return inline_serializer(
        name=name,
        fields={
            "IsValid": serializers.BooleanField(),
            "Warnings": serializers.ListField(child=serializers.JSONField()),
            "Errors": serializers.ListField(child=ErrorTokenEntradaSerializer()),
            "ResultData": inline_serializer(name=f"{name}Datos", fields=fields)
            if fields
            else serializers.JSONField(allow_null=True, default=None),
            "ResultCode": serializers.IntegerField(),
        },
    )


def _error_example(status_code: int, code: str, field=None, description=None):
    return OpenApiExample(
        str(status_code),
        response_only=True,
        status_codes=[str(status_code)],
        value=ENVELOPE_B.error(status_code=status_code, message=code)
        if field is None
        else ENVELOPE_B.error(status_code=status_code, message=code, errors={field: [description]}),
    )


_TOKEN_DATA = {
    "access_token": serializers.CharField(help_text="RS256 JWT; `kid` names the JWKS key."),
    "expires": serializers.CharField(help_text="ISO 8601, UTC."),
    "token_type": serializers.CharField(default="bearer"),
    "virtual_operator_alias": serializers.CharField(),
}
ERROR_B = _envelope_b("ErrorToken", None)


class GetTokenSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="Email (or login).")
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    virtual_operator = serializers.CharField(max_length=60)


class GetTokenView(ConsumoAPIView):
    envelope = ENVELOPE_B
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []  # the sign-in lockout limits it
    id_bitacora_en_respuesta = False

    @extend_schema(
        operation_id="auth_gettoken",
        summary="Solicitar TOKEN (JWT)",
        description="A JWT (RS256, `JWT_LIFETIME_MINUTES`, 2 hours by default) for the user. "
        "Wrong user, password or virtual operator: 400 `IdentificationDoesNotMatch`. "
        "Anything else wrong with the request (missing field, malformed JSON, content type "
        "other than JSON): 400; a body too large: 413; too many failures: 429.",
        tags=["Token"],
        auth=[],
        request=GetTokenSerializer,
        responses={
            200: _envelope_b("GetToken", _TOKEN_DATA),
            400: OpenApiResponse(
                ERROR_B,
                "Bad credentials, or a bad request.",
                examples=[
                    _error_example(400, IDENTIFICACION_NO_COINCIDE),
                    OpenApiExample(
                        "400 campo",
                        response_only=True,
                        status_codes=["400"],
                        value=ENVELOPE_B.error(
                            status_code=422,
                            message="InvalidValue",
                            errors={"username": ["Este campo es requerido."]},
                        ),
                    ),
                ],
            ),
            413: OpenApiResponse(ERROR_B, "Body larger than allowed."),
            429: OpenApiResponse(
                ERROR_B,
                "Too many failed sign-ins for this account or client IP (see Retry-After).",
                examples=[_error_example(429, "TooManyRequests")],
            ),
            500: OpenApiResponse(ERROR_B, "Internal error (no details are given)."),
        },
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "username": "integracion@example.com",
                    "password": "string",
                    "virtual_operator": "default",
                },
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value=ENVELOPE_B.success(
                    data={
                        "access_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9."
                        "eyJ2aXJ0dWFsb3BlcmF0b3IiOiJkZWZhdWx0In0.c2lnbmF0dXJl",
                        "expires": "2023-05-26T04:44:48.000000Z",
                        "token_type": "bearer",
                        "virtual_operator_alias": "default",
                    }
                ),
            ),
        ],
    )
    def post(self, request):
        datos = self.validar(GetTokenSerializer, request.data)
        try:
            emitido = jwt_solicitar(
                identificador=datos["username"],
                password=datos["password"],
                operador=datos["virtual_operator"],
                ip=client_ip(request),
            )
        except AccesoBloqueado as exc:
            raise exceptions.Throttled(wait=exc.espera) from exc  # 429 with Retry-After
        except CredencialesInvalidas as exc:
            raise ApiError(400, IDENTIFICACION_NO_COINCIDE) from exc
        request.user = emitido.usuario  # the audit row names the user
        return self.ok(
            {
                "access_token": emitido.token,
                "expires": expires_iso(emitido.expira),
                "token_type": "bearer",
                "virtual_operator_alias": emitido.operador,
            }
        )
