"""Consumo endpoints of the ticket domain (seed 000): correo/save and correo/getConfigCorreos."""

import base64
import binascii
import os
import stat
from datetime import datetime
from email.message import Message
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response

from sso.api.consumo import ConsumoAPIView
from sso.api.envelopes import ApiError
from sso.api.schema import consumo_responses

from .ingest import dominio_propio, ingest
from .mensajes import (
    AdjuntoEntrante,
    MensajeEntrante,
    addresses,
    decode_text,
    html_to_text,
    message_ids,
    nombre_de_archivo,
    sanitise_html,
    tipo_automatico,
)
from .models import CuentaCorreo

# --- POST /api/correo/save ------------------------------------------------------------------


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
class DireccionesField(serializers.Field):
    """Addresses as the seed sends them: one string ("a@x, B <b@y>") or a list of strings."""

    default_error_messages = {"invalid": "Debe ser texto o una lista de textos."}

    def to_internal_value(self, data) -> list[tuple[str, str]]:
        if isinstance(data, str):
            values = [data]
        elif isinstance(data, list) and all(isinstance(item, str) for item in data):
            values = data
        else:
            self.fail("invalid")
        return addresses(values)

    def to_representation(self, value):
        return ", ".join(addr for _, addr in value)


class AdjuntoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    type = serializers.CharField(max_length=255, required=False, allow_blank=True)
    route = serializers.CharField(max_length=1024, required=False, allow_blank=True)
    content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    def validate(self, attrs):
        if bool(attrs.get("route")) == bool(attrs.get("content")):
            raise serializers.ValidationError("Indique `route` o `content` (base64), uno solo.")
        return attrs


def leer_ruta_adjunto(route: str, *, limite: int) -> bytes:
    """The bytes of a `route` attachment: a file under ATTACHMENTS_ROOT, never outside it,
    and never more than `limite` bytes.

    What is checked is what is read: the file is opened once (no link as its last part), and
    its real path and size are taken from the open descriptor, so swapping a link in between
    the check and the read changes nothing.
    """
    relative = Path(route)
    if relative.is_absolute() or ".." in relative.parts or "\x00" in route:
        raise serializers.ValidationError(f"Ruta no permitida: {route}")
    root = Path(settings.ATTACHMENTS_ROOT).resolve()
    try:
        fd = os.open(root / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise serializers.ValidationError(f"No existe el archivo: {route}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a device, a pipe
        os.close(fd)
        raise serializers.ValidationError(f"No existe el archivo: {route}")
    with os.fdopen(fd, "rb") as handle:
        real = Path(os.path.realpath(f"/proc/self/fd/{handle.fileno()}"))
        if not real.is_relative_to(root):
            raise serializers.ValidationError(f"Ruta no permitida: {route}")
        contenido = handle.read(limite + 1)
    if len(contenido) > limite:
        raise serializers.ValidationError(f"El archivo excede el tamaño permitido: {route}")
    return contenido


@extend_schema_serializer(component_name="CorreoEntrante")
class CorreoSaveInput(serializers.Serializer):
    # 116: the source it becomes ("api:" + sistema) fits its 120-character column.
    sistema = serializers.CharField(max_length=116, required=False, allow_blank=True, default="")
    subject = serializers.CharField(required=False, allow_blank=True, default="")
    from_ = DireccionesField(label="from")
    to = DireccionesField(required=False, default=list)
    cc = DireccionesField(required=False, default=list)
    bcc = DireccionesField(required=False, default=list)
    reply_to = DireccionesField(required=False, default=list)
    body = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    html = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    date = serializers.CharField(required=False, allow_blank=True, default="")
    headers = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    attachments = AdjuntoSerializer(many=True, required=False, default=list)
    message_id = serializers.CharField(required=False, allow_blank=True, default="")
    in_reply_to = serializers.CharField(required=False, allow_blank=True, default="")
    references = serializers.CharField(required=False, allow_blank=True, default="")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        return fields

    def validate_from(self, value):
        if not value:
            raise serializers.ValidationError("Indique una dirección de correo válida.")
        return value

    def validate_date(self, value):
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise serializers.ValidationError(
                "Fecha inválida: use 'AAAA-MM-DD HH:MM:SS' o ISO 8601."
            ) from None
        if not (1970 <= parsed.year <= 9000):
            raise serializers.ValidationError("Fecha fuera de rango.")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)  # the portal's time zone, as the seed sends it
        return parsed

    def validate(self, attrs):
        adjuntos, total = [], 0
        errores = {}
        for index, item in enumerate(attrs.get("attachments", [])):
            try:
                if item.get("route"):
                    restante = settings.INGEST_MAX_BYTES - total
                    contenido = leer_ruta_adjunto(item["route"], limite=max(restante, 0))
                else:
                    contenido = base64.b64decode(item["content"], validate=True)
            except binascii.Error:
                errores[str(index)] = ["`content` no es base64 válido."]
                continue
            except serializers.ValidationError as exc:
                errores[str(index)] = exc.detail
                continue
            total += len(contenido)
            adjuntos.append(
                AdjuntoEntrante(
                    nombre=nombre_de_archivo(item["name"]) or "adjunto",
                    content_type=item.get("type") or "application/octet-stream",
                    contenido=contenido,
                )
            )
        if errores:
            raise serializers.ValidationError({"attachments": errores})
        if total > settings.INGEST_MAX_BYTES:
            raise serializers.ValidationError(
                {"attachments": ["Los adjuntos exceden el tamaño permitido."]}
            )
        attrs["adjuntos"] = adjuntos
        return attrs


def mensaje_desde_json(data: dict) -> MensajeEntrante:
    """The correo/save JSON as the pipeline's message, like a parsed raw mail."""
    headers = {
        str(k).lower()[:100]: decode_text(v)[:2000] for k, v in (data.get("headers") or {}).items()
    }
    cabeceras = Message()
    for key, value in headers.items():
        cabeceras[key] = value
    ids = message_ids(data["message_id"] or headers.get("message-id", ""))
    de_nombre, de_email = data["from"][0]
    limpio = sanitise_html(data["html"])
    mensaje = MensajeEntrante(
        message_id=ids[0] if ids else "",
        in_reply_to=message_ids(data["in_reply_to"] or headers.get("in-reply-to", "")),
        references=message_ids(data["references"] or headers.get("references", "")),
        asunto=decode_text(data["subject"])[:998],
        de_nombre=de_nombre,
        de_email=de_email,
        para=[addr for _, addr in data["to"]],
        cc=[addr for _, addr in data["cc"]],
        bcc=[addr for _, addr in data["bcc"]],
        responder_a=[addr for _, addr in data["reply_to"]],
        fecha=data["date"],
        texto=data["body"] or html_to_text(limpio),
        html=limpio,
        headers=headers,
        adjuntos=data["adjuntos"],
        sistema=data["sistema"],
    )
    mensaje.automatico = tipo_automatico(cabeceras, mensaje.de_email, dominio_propio())
    return mensaje


@extend_schema_serializer(component_name="CorreoSaveRespuesta")
class CorreoSaveOutput(serializers.Serializer):
    """The seed's flat answer (not envelope A); ids are strings."""

    success = serializers.BooleanField()
    message = serializers.CharField()
    ticket = serializers.CharField(allow_null=True)
    id_detalle_ticket = serializers.CharField(allow_null=True)
    notificacion_SLA_Synology = serializers.CharField()
    notificacion_SLA_Correo = serializers.CharField()
    id_departamento_asignado = serializers.CharField(allow_null=True)
    id_usuario_asignado = serializers.CharField(allow_null=True)
    id_bitacora_log = serializers.IntegerField(allow_null=True)


class CorreoSaveView(ConsumoAPIView):
    permiso = "correo.save"

    @property
    def max_body_bytes(self) -> int:
        # base64 grows attachments by a third; the rest is headers and text.
        return settings.INGEST_MAX_BYTES * 4 // 3 + 1024 * 1024

    @extend_schema(
        operation_id="correo_save",
        summary="Correo electrónico entrante",
        tags=["Correo Electrónico"],
        request=CorreoSaveInput,
        responses={**consumo_responses("CorreoSaveError", None), 200: CorreoSaveOutput},
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "sistema": "canal_lectura",
                    "subject": "prueba",
                    "from": "cliente@example.com",
                    "to": "soporte@example.com",
                    "cc": "copia@example.com",
                    "bcc": "",
                    "reply_to": "cliente@example.com",
                    "body": "contenido del correo en texto plano.",
                    "html": "<p>Contenido del correo en HTML</p>",
                    "date": "2025-10-10 12:00:00",
                    "headers": {"X-Custom-Header": "Valor", "X-Tracking-ID": "abc123"},
                    "attachments": [
                        {
                            "name": "error_log.txt",
                            "route": "logs/error_log.txt",
                            "type": "text/plain",
                        }
                    ],
                },
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "success": True,
                    "message": "Se ha creado el ticket 132",
                    "ticket": "132",
                    "id_detalle_ticket": "1234",
                    "notificacion_SLA_Synology": "No emitida",
                    "notificacion_SLA_Correo": "No emitida",
                    "id_departamento_asignado": "1",
                    "id_usuario_asignado": "1",
                    "id_bitacora_log": 735690,
                },
            ),
        ],
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ApiError(422, "Datos inválidos.", {"non_field_errors": ["Se espera un objeto."]})
        params = CorreoSaveInput(data=request.data)
        params.is_valid(raise_exception=True)
        mensaje = mensaje_desde_json(params.validated_data)
        fuente = f"api:{mensaje.sistema or 'correo'}"
        resultado = ingest(mensaje, fuente=fuente)
        ticket = resultado.ticket
        return Response(
            {
                "success": ticket is not None,
                "message": resultado.mensaje,
                "ticket": _id(ticket.numero if ticket else None),
                "id_detalle_ticket": _id(resultado.detalle.pk if resultado.detalle else None),
                "notificacion_SLA_Synology": resultado.notificacion_synology,
                "notificacion_SLA_Correo": resultado.notificacion_correo,
                "id_departamento_asignado": _id(ticket.departamento_id if ticket else None),
                "id_usuario_asignado": _id(ticket.asignado_id if ticket else None),
            }
        )


def _id(value) -> str | None:
    return None if value is None else str(value)


# --- POST /api/correo/getConfigCorreos ------------------------------------------------------


class GetConfigCorreosView(ConsumoAPIView):
    permiso = "correo.config"

    @extend_schema_serializer(component_name="CuentaCorreoFiltro")
    class InputSerializer(serializers.Serializer):
        id_cuenta_correo = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**63 - 1
        )
        user = serializers.CharField(required=False, allow_blank=True, max_length=255)
        departamento = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**63 - 1
        )
        estado = serializers.ChoiceField(
            choices=CuentaCorreo.Estado.values, required=False, allow_blank=True
        )

    @extend_schema_serializer(component_name="CuentaCorreoConfig")
    class OutputSerializer(serializers.Serializer):
        id_cuenta_correo = serializers.IntegerField(source="pk")
        host = serializers.CharField()
        user = serializers.CharField()
        password = serializers.CharField()
        port = serializers.SerializerMethodField()
        mail_boxes = serializers.ListField(child=serializers.CharField(), source="carpetas")
        departamento = serializers.IntegerField(source="departamento_id", allow_null=True)
        estado = serializers.CharField()

        def get_port(self, obj) -> str:
            return str(obj.port)

    @extend_schema(
        operation_id="correo_get_config",
        summary="Bandejas de correo configuradas para el proceso de lectura",
        tags=["Correo Electrónico"],
        request=InputSerializer,
        responses=consumo_responses("GetConfigCorreos", OutputSerializer(many=True)),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "id_cuenta_correo": 1,
                    "user": "soporte@example.com",
                    "departamento": 1,
                    "estado": "activo",
                },
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "data": [
                        {
                            "id_cuenta_correo": 1,
                            "host": "mail.example.com",
                            "user": "soporte@example.com",
                            "password": "<contraseña del buzón>",
                            "port": "993",
                            "mail_boxes": ["INBOX"],
                            "departamento": 2,
                            "estado": "activo",
                        }
                    ],
                    "status": "ok",
                    "message": "",
                    "code": 200,
                    "id_bitacora_log": 735687,
                },
            ),
        ],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        filtros = params.validated_data
        cuentas = CuentaCorreo.objects.order_by("pk")
        if filtros.get("id_cuenta_correo"):
            cuentas = cuentas.filter(pk=filtros["id_cuenta_correo"])
        if filtros.get("user"):
            cuentas = cuentas.filter(user__iexact=filtros["user"])
        if filtros.get("departamento"):
            cuentas = cuentas.filter(departamento_id=filtros["departamento"])
        if filtros.get("estado"):
            cuentas = cuentas.filter(estado=filtros["estado"])
        return self.ok(self.OutputSerializer(cuentas, many=True).data, "")
