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


# --- Envelope D (auth, seed 003) ------------------------------------------------------------

ERROR_D = inline_serializer(
    name="ErrorAuth",
    fields={
        "success": serializers.BooleanField(default=False),
        "message": serializers.CharField(),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        ),
    },
)

_MENSAJES_D = {
    400: ("Malformed JSON or a content type other than application/json.", "JSON mal formado."),
    401: ("Missing, wrong, expired or revoked Bearer token.", "No autenticado."),
    413: ("Body larger than allowed.", "El cuerpo de la solicitud excede el tamaño permitido."),
    422: ("Invalid fields.", "Error de validación."),
    500: ("Internal error (no details are given).", "Error interno del servidor."),
}


def envelope_d(name: str, data_serializer, status: int = 200) -> serializers.Serializer:
    return inline_serializer(
        name=f"{name}Respuesta",
        fields={
            "success": serializers.BooleanField(default=True),
            "message": serializers.CharField(),
            "data": data_serializer
            if data_serializer is not None
            else serializers.JSONField(allow_null=True, default=None),
        },
    )


def auth_responses(
    name: str, data_serializer, errores: dict, *, status: int = 200, alternativa=None
) -> dict:
    """Responses of an envelope-D endpoint: its success body and its errors (`errores` maps
    a status to its message; 400, 401, 413, 422 and 500 are always there)."""
    if data_serializer is None and alternativa is not None:
        exito = alternativa
    else:
        exito = envelope_d(name, data_serializer)
    responses = {status: exito}
    for code, (descripcion, mensaje) in _MENSAJES_D.items():
        responses[code] = OpenApiResponse(
            ERROR_D,
            descripcion,
            examples=[
                OpenApiExample(
                    f"{code}",
                    value={"success": False, "message": mensaje},
                    response_only=True,
                    status_codes=[str(code)],
                )
            ],
        )
    for code, mensaje in errores.items():
        responses[code] = OpenApiResponse(
            ERROR_D,
            mensaje,
            examples=[
                OpenApiExample(
                    f"{code}",
                    value={"success": False, "message": mensaje},
                    response_only=True,
                    status_codes=[str(code)],
                )
            ],
        )
    return responses


# --- Envelope C (Integra, seed 002) ---------------------------------------------------------

ERROR_C = inline_serializer(
    name="ErrorIntegra",
    fields={
        "data": serializers.JSONField(allow_null=True, default=None),
        "message": serializers.CharField(),
        "success": serializers.BooleanField(default=False),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        ),
    },
)

_MENSAJES_C = {
    400: ("Malformed JSON or a content type other than application/json.", "JSON mal formado."),
    401: ("Missing, wrong, expired or revoked Bearer token.", "No autenticado."),
    403: (
        "The user lacks the permission, or the OAuth2 token the scope.",
        "No autorizado para este recurso.",
    ),
    413: ("Body larger than allowed.", "El cuerpo de la solicitud excede el tamaño permitido."),
    422: ("Invalid fields.", "Datos inválidos."),
    500: ("Internal error (no details are given).", "Error interno del servidor."),
}


def envelope_c(name: str, data_serializer) -> serializers.Serializer:
    return inline_serializer(
        name=f"{name}Respuesta",
        fields={
            "data": data_serializer
            if data_serializer is not None
            else serializers.JSONField(allow_null=True, default=None),
            "message": serializers.CharField(),
            "success": serializers.BooleanField(default=True),
        },
    )


def integra_responses(name: str, data_serializer, errores: dict | None = None) -> dict:
    """Responses of an envelope-C endpoint; `errores` maps a status to its message, or to the
    whole error body. The success example comes from the operation's `examples`."""
    responses = {200: envelope_c(name, data_serializer)}
    todos = {code: mensaje for code, (_, mensaje) in _MENSAJES_C.items()} | (errores or {})
    for code, mensaje in todos.items():
        valor = (
            mensaje
            if isinstance(mensaje, dict)
            else {"data": None, "message": mensaje, "success": False}
        )
        descripcion = _MENSAJES_C.get(code, (valor["message"],))[0]
        responses[code] = OpenApiResponse(
            ERROR_C,
            descripcion,
            examples=[
                OpenApiExample(f"{code}", value=valor, response_only=True, status_codes=[str(code)])
            ],
        )
    return responses
