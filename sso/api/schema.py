"""OpenAPI helpers: the envelopes of each family as schema components."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers


def envelope_a(name: str, data_serializer) -> serializers.Serializer:
    """Envelope A (consumo) around `data_serializer`."""
    return inline_serializer(
        name=f"{name}Respuesta",
        fields={
            "data": data_serializer,
            "status": serializers.CharField(default="ok"),
            "message": serializers.CharField(),
            "code": serializers.IntegerField(default=200),
            "id_bitacora_log": serializers.IntegerField(allow_null=True),
        },
    )


ERROR_A = inline_serializer(
    name="ErrorConsumo",
    fields={
        "data": serializers.JSONField(allow_null=True, default=None),
        "status": serializers.CharField(default="error"),
        "message": serializers.CharField(),
        "code": serializers.IntegerField(),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        ),
        "id_bitacora_log": serializers.IntegerField(allow_null=True),
    },
)

UNAUTHORIZED_A = inline_serializer(
    name="CredencialesConsumoInvalidas", fields={"message": serializers.CharField()}
)


def _error_example(code: int, message: str, errors=None) -> OpenApiExample:
    value = {"data": None, "status": "error", "message": message, "code": code}
    if errors:
        value["errors"] = errors
    value["id_bitacora_log"] = 2010960
    return OpenApiExample(f"{code}", value=value, response_only=True, status_codes=[str(code)])


def consumo_responses(name: str, data_serializer) -> dict:
    """Responses of a consumo endpoint: its success body and envelope A's errors."""
    return {
        200: envelope_a(name, data_serializer),
        400: OpenApiResponse(
            ERROR_A, "Malformed JSON.", examples=[_error_example(400, "JSON mal formado.")]
        ),
        401: OpenApiResponse(
            UNAUTHORIZED_A,
            "Missing or wrong `X-User-Consumo` / `X-User-Secret`.",
            examples=[
                OpenApiExample(
                    "401",
                    value={"message": "Credenciales de consumo inválidas"},
                    response_only=True,
                    status_codes=["401"],
                )
            ],
        ),
        403: OpenApiResponse(ERROR_A, "The consumer lacks this endpoint's permission."),
        413: OpenApiResponse(ERROR_A, "Body larger than allowed."),
        415: OpenApiResponse(ERROR_A, "Content type other than application/json."),
        422: OpenApiResponse(
            ERROR_A,
            "Invalid fields.",
            examples=[
                _error_example(422, "Datos inválidos.", {"email": ["Este campo es requerido."]})
            ],
        ),
        429: OpenApiResponse(ERROR_A, "Too many requests."),
        500: OpenApiResponse(ERROR_A, "Internal error (no details are given)."),
    }
