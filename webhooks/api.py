"""POST /api/Synology/BotAsistencia/configurarIdUsuario (seed 000): Synology Chat's bot.

Synology cannot send headers of its own: the `token` in the body (form or JSON) is the
authentication, compared in constant time with SYNOLOGY_BOT_TOKEN. Consumer headers, when a
caller sends them as the seed's example does, are ignored. Answers and the audit row are the
consumo family's (envelope A, `id_bitacora_log`); the token is masked in the audit row.
"""

import hmac

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers

from sso.api.consumo import ConsumoAPIView
from sso.api.envelopes import ApiError, EnvelopeA
from sso.api.parsers import FormParser, JSONParser
from sso.api.schema import ERROR_A, consumo_responses

from .bot import bot_atender


class EnvelopeBot(EnvelopeA):
    """Envelope A, whose 401 is a full envelope: there are no consumer headers to blame."""

    messages = {**EnvelopeA.messages, 401: "Token del bot inválido."}

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        body = {"data": data, "status": "error", "message": message, "code": status_code}
        if errors:
            body["errors"] = errors
        return body


ENVELOPE_BOT = EnvelopeBot()


def bot_token_valido(token) -> bool:
    """`token` equals SYNOLOGY_BOT_TOKEN, compared in constant time; never with none set."""
    esperado = settings.SYNOLOGY_BOT_TOKEN or ""
    recibido = token if isinstance(token, str) else ""
    iguales = hmac.compare_digest(recibido.encode("utf-8"), esperado.encode("utf-8"))
    return bool(esperado) and iguales


_SEED_REQUEST = {
    "token": "<string del token>",
    "user_id": 120,
    "username": "jmora",
    "thread_id": 1,
    "timestamp": 1752066920406,
    "text": "Hola.",
}
_SEED_RESPONSE = {
    "data": {
        "response_update_usuario": "Usuario jmora actualizado.",
        "synology_response": {
            "data": {"fail": None, "succ": {"user_id_post_map": {"120": 23059679412324}}},
            "success": True,
        },
    },
    "status": "ok",
    "message": "Usuario jmora actualizado.",
    "code": 200,
    "id_bitacora_log": 223,
}


def _respuestas() -> dict:
    """Envelope A's answers, less those of consumer headers (403, 429); a full-envelope 401."""
    respuestas = consumo_responses("BotConfigurarIdUsuario", ConfigurarIdUsuarioSalida)
    del respuestas[403], respuestas[429]
    respuestas[401] = OpenApiResponse(
        ERROR_A,
        "Missing or wrong bot token.",
        examples=[
            OpenApiExample(
                "401",
                value={
                    "data": None,
                    "status": "error",
                    "message": "Token del bot inválido.",
                    "code": 401,
                    "id_bitacora_log": 224,
                },
                response_only=True,
                status_codes=["401"],
            )
        ],
    )
    respuestas[502] = OpenApiResponse(
        ERROR_A, "The user was linked, but Synology Chat could not be answered."
    )
    return respuestas


@extend_schema_serializer(component_name="BotAsistenciaResultado")
class ConfigurarIdUsuarioSalida(serializers.Serializer):
    response_update_usuario = serializers.CharField()
    synology_response = serializers.JSONField(
        allow_null=True, help_text="Synology's answer to the chatbot message."
    )


_RESPUESTAS = _respuestas()


class ConfigurarIdUsuarioView(ConsumoAPIView):
    envelope = ENVELOPE_BOT
    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    parser_classes = [JSONParser, FormParser]
    max_body_bytes = 64 * 1024

    @extend_schema_serializer(component_name="BotAsistenciaMensaje")
    class InputSerializer(serializers.Serializer):
        """What Synology Chat's outgoing webhook posts (form fields or JSON)."""

        token = serializers.CharField(
            required=False, allow_blank=True, max_length=512, help_text="The bot's token."
        )
        user_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        username = serializers.CharField(max_length=150)
        text = serializers.CharField(
            required=False, allow_blank=True, max_length=4000, trim_whitespace=False
        )
        trigger_word = serializers.CharField(required=False, allow_blank=True, max_length=100)
        channel_id = serializers.CharField(required=False, allow_blank=True, max_length=40)
        channel_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
        post_id = serializers.CharField(required=False, allow_blank=True, max_length=40)
        thread_id = serializers.CharField(required=False, allow_blank=True, max_length=40)
        timestamp = serializers.CharField(required=False, allow_blank=True, max_length=40)

    @extend_schema(
        operation_id="synology_bot_configurar_id_usuario",
        summary="Configurar Synology con PSC",
        description=(
            "Called by Synology Chat's bot (outgoing webhook), as form fields or JSON. `token` "
            "must be the bot's token (SYNOLOGY_BOT_TOKEN); consumer headers are not needed. "
            "The Synology user is linked to the internal user whose login is `username` "
            "(`user_id` stored as `id_synology`), and answered through the chatbot API. The "
            "bot understands `ticket 132`, `mis tickets` and `ayuda` in `text`."
        ),
        tags=["WebHooks"],
        auth=[],
        request={
            "application/json": InputSerializer,
            "application/x-www-form-urlencoded": InputSerializer,
        },
        responses=_RESPUESTAS,
        examples=[
            OpenApiExample("Solicitud", request_only=True, value=_SEED_REQUEST),
            OpenApiExample(
                "Respuesta", response_only=True, status_codes=["200"], value=_SEED_RESPONSE
            ),
        ],
    )
    def post(self, request):
        cuerpo = request.data
        cuerpo = cuerpo.dict() if hasattr(cuerpo, "dict") else cuerpo
        if not isinstance(cuerpo, dict) or not bot_token_valido(cuerpo.get("token")):
            raise ApiError(401, self.envelope.message_for(401))
        datos = self.validar(self.InputSerializer, cuerpo)
        resultado = bot_atender(
            user_id=datos["user_id"],
            username=datos["username"],
            texto=datos.get("text", ""),
            trigger_word=datos.get("trigger_word", ""),
        )
        if resultado.usuario is not None:
            request.user = resultado.usuario  # the audit row names the internal user
        data = {
            "response_update_usuario": resultado.mensaje,
            "synology_response": resultado.synology_response,
        }
        if resultado.error is not None:
            raise ApiError(502, "No se pudo responder por Synology Chat.", data=data)
        return self.ok(data, resultado.mensaje)

    def head(self, request):
        """Synology may probe the webhook's address before posting to it."""
        return self.ok(None, "")
