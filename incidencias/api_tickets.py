"""Tickets API v1 under /api/v1/: plain REST for external systems, RFC 7807 errors.

Bearer authentication with any of the three kinds of token (`sso.api.bearer`). OAuth2 tokens
need the `read` scope for GET and `write` for anything else; user tokens and JWTs are the
user's own sign-in and are limited by what the user may do. Every ticket is looked up within
`selectors.tickets_para_usuario` (404 outside it, as for one that does not exist); changes also
need `selectors.puede_trabajar` (403). The views are thin callers of `services`.

Errors are `application/problem+json` (RFC 7807): `type`, `title`, `status`, `detail`,
`instance`, and for invalid data `errors` (field → messages).
"""

import base64
import binascii
import json
from datetime import datetime

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from sso.api.auth import AuthAPIView
from sso.api.envelopes import ENVELOPE_PROBLEMA, PROBLEMA, ApiError
from sso.api.scopes import requiere_scope
from sso.models import Departamento, Usuario

from . import selectors, services
from .models import Adjunto, DetalleTicket, EstadoSLA, Prioridad, Ticket

PAGINA_MAX = 100
PAGINA = 25


# Domain errors of the services: status and problem type.
_ERRORES = {
    services.DatosInvalidos: 422,
    services.SinDestinatario: 422,
    services.FusionInvalida: 422,
    services.TicketFusionado: 409,
}


def _error_de_servicio(exc: services.TicketError) -> ApiError:
    status_code = next((s for clase, s in _ERRORES.items() if isinstance(exc, clase)), 422)
    errores = {campo: [str(m)] for campo, m in exc.campos.items()} or None
    return ApiError(
        status_code,
        str(exc),
        errors=errores,
        data={"type": f"urn:incidencias:problema:{exc.codigo}"},
    )


class PorMetodoScope(BasePermission):
    """OAuth2 tokens: `read` for GET, `write` for anything else."""

    message = requiere_scope("read").message
    _read, _write = requiere_scope("read")(), requiere_scope("write")()

    def has_permission(self, request, view):
        permiso = self._read if request.method in ("GET", "HEAD") else self._write
        return permiso.has_permission(request, view)


class TicketsAPIView(AuthAPIView):
    """Bearer, JSON (bounded), problem+json errors."""

    envelope = ENVELOPE_PROBLEMA
    permission_classes = [IsAuthenticated, PorMetodoScope]

    def handle_exception(self, exc):
        if isinstance(exc, services.TicketError):
            exc = _error_de_servicio(exc)
        elif isinstance(exc, exceptions.UnsupportedMediaType):
            exc = ApiError(415, "Use application/json.")
        elif isinstance(exc, exceptions.PermissionDenied) and not isinstance(exc, ApiError):
            exc = ApiError(403, str(exc.detail))  # the permission's own sentence (scope)
        elif isinstance(exc, Ticket.DoesNotExist):
            exc = ApiError(404, "No existe ese ticket.")
        response = super(AuthAPIView, self).handle_exception(exc)
        if isinstance(response.data, dict) and "status" in response.data:
            response.data["instance"] = self.request.path
            response.content_type = PROBLEMA
        return response

    def datos(self, serializer_class) -> dict:
        body = self.request.data
        if not isinstance(body, dict):
            raise ApiError(400, "El cuerpo debe ser un objeto JSON.")
        serializer = serializer_class(data=body)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def ticket(self, numero) -> Ticket:
        return selectors.ticket_para_usuario(usuario=self.request.user, numero_o_pk=numero)

    def ticket_trabajable(self, numero) -> Ticket:
        ticket = self.ticket(numero)
        if not selectors.puede_trabajar(self.request.user, ticket):
            raise ApiError(403, "No puede trabajar este ticket.")
        return ticket


# --- Bodies and answers ---------------------------------------------------------------------


class Problema(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class Referencia(serializers.Serializer):
    id = serializers.IntegerField()
    nombre = serializers.CharField()


class Persona(serializers.Serializer):
    id = serializers.IntegerField()
    nombre = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)


class Solicitante(serializers.Serializer):
    nombre = serializers.CharField(allow_blank=True)
    email = serializers.EmailField(allow_blank=True)


class TicketSalida(serializers.Serializer):
    numero = serializers.IntegerField()
    asunto = serializers.CharField()
    estado = serializers.ChoiceField(Ticket.Estado.choices)
    prioridad = serializers.ChoiceField(Prioridad.choices)
    canal = serializers.ChoiceField(Ticket.Canal.choices)
    sla = serializers.ChoiceField(EstadoSLA.choices)
    departamento = Referencia(allow_null=True)
    asignado = Persona(allow_null=True)
    solicitante = Solicitante()
    participantes = serializers.ListField(child=serializers.EmailField())
    fusionado_en = serializers.IntegerField(
        allow_null=True, help_text="The number of the ticket this one was merged into."
    )
    creado = serializers.DateTimeField()
    actualizado = serializers.DateTimeField()
    primera_respuesta_en = serializers.DateTimeField(allow_null=True)
    resuelto_en = serializers.DateTimeField(allow_null=True)
    cerrado_en = serializers.DateTimeField(allow_null=True)
    vence_primera_respuesta = serializers.DateTimeField(allow_null=True)
    vence_resolucion = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


class AdjuntoSalida(serializers.Serializer):
    id = serializers.IntegerField()
    nombre = serializers.CharField()
    content_type = serializers.CharField()
    tamano = serializers.IntegerField()
    en_linea = serializers.BooleanField()
    url = serializers.CharField(help_text="Download (permission checked).")


class DetalleSalida(serializers.Serializer):
    id = serializers.IntegerField()
    tipo = serializers.ChoiceField(DetalleTicket.Tipo.choices)
    automatico = serializers.CharField(allow_blank=True)
    autor = Persona(allow_null=True)
    de = serializers.CharField(allow_blank=True)
    para = serializers.CharField(allow_blank=True)
    cc = serializers.CharField(allow_blank=True)
    asunto = serializers.CharField(allow_blank=True)
    texto = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True, help_text="Sanitised.")
    fecha = serializers.DateTimeField(allow_null=True)
    creado = serializers.DateTimeField()
    adjuntos = AdjuntoSalida(many=True)


class TicketDetalleSalida(TicketSalida):
    detalles = DetalleSalida(many=True)


class PaginaSalida(serializers.Serializer):
    results = TicketSalida(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL, or null.")


class TicketEntrada(serializers.Serializer):
    departamento = serializers.IntegerField()
    asunto = serializers.CharField(max_length=998)
    texto = serializers.CharField(max_length=100_000)
    solicitante_nombre = serializers.CharField(max_length=255, required=False, default="")
    solicitante_email = serializers.EmailField(required=False, default="")
    prioridad = serializers.ChoiceField(Prioridad.choices, default=Prioridad.NORMAL)


class AdjuntoEntrada(serializers.Serializer):
    nombre = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=255, default="application/octet-stream")
    contenido = serializers.CharField(help_text="Base64.")

    def validate_contenido(self, valor):
        try:
            return base64.b64decode(valor, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("No es base64 válido.") from None


class RespuestaEntrada(serializers.Serializer):
    texto = serializers.CharField(max_length=100_000)
    html = serializers.CharField(max_length=500_000, required=False, default="")
    cc = serializers.ListField(child=serializers.EmailField(), required=False, default=list)
    estado = serializers.ChoiceField(Ticket.Estado.choices, required=False, allow_null=True)
    adjuntos = AdjuntoEntrada(many=True, required=False, default=list)


class NotaEntrada(serializers.Serializer):
    texto = serializers.CharField(max_length=100_000)


class AsignarEntrada(serializers.Serializer):
    agente = serializers.IntegerField(allow_null=True, help_text="A user id; null: the queue.")


class EstadoEntrada(serializers.Serializer):
    estado = serializers.ChoiceField(Ticket.Estado.choices)


class PrioridadEntrada(serializers.Serializer):
    prioridad = serializers.ChoiceField(Prioridad.choices)


class TransferirEntrada(serializers.Serializer):
    departamento = serializers.IntegerField()


class FusionarEntrada(serializers.Serializer):
    destino = serializers.IntegerField(help_text="The number of the ticket to merge into.")


# --- JSON -----------------------------------------------------------------------------------


def _fecha(valor: datetime | None) -> str | None:
    return valor.isoformat() if valor else None


def _persona(usuario: Usuario | None) -> dict | None:
    if usuario is None:
        return None
    return {"id": usuario.pk, "nombre": usuario.nombre or usuario.username, "email": usuario.email}


def ticket_json(t: Ticket, *, fusionado_numero: int | None = None) -> dict:
    departamento = t.departamento if t.departamento_id else None
    return {
        "numero": t.numero,
        "asunto": t.asunto,
        "estado": t.estado,
        "prioridad": t.prioridad,
        "canal": t.canal,
        "sla": getattr(t, "estado_sla", EstadoSLA.OK),
        "departamento": (
            {"id": departamento.pk, "nombre": departamento.nombre} if departamento else None
        ),
        "asignado": _persona(t.asignado if t.asignado_id else None),
        "solicitante": {"nombre": t.solicitante_nombre, "email": t.solicitante_email},
        "participantes": list(t.participantes),
        "fusionado_en": fusionado_numero,
        "creado": _fecha(t.creado),
        "actualizado": _fecha(t.actualizado),
        "primera_respuesta_en": _fecha(t.primera_respuesta_en),
        "resuelto_en": _fecha(t.resuelto_en),
        "cerrado_en": _fecha(t.cerrado_en),
        "vence_primera_respuesta": _fecha(t.vence_primera_respuesta),
        "vence_resolucion": _fecha(t.vence_resolucion),
        "url": reverse("api-v1-ticket", args=[t.numero]),
    }


def adjunto_json(a: Adjunto) -> dict:
    return {
        "id": a.pk,
        "nombre": a.nombre,
        "content_type": a.content_type,
        "tamano": a.tamano,
        "en_linea": a.en_linea,
        "url": reverse("api-v1-adjunto", args=[a.pk]),
    }


def detalle_json(d: DetalleTicket, adjuntos: list[Adjunto] | None = None) -> dict:
    """An entry; `adjuntos`, its attachments when already read (`selectors.hilo`)."""
    if adjuntos is None:
        adjuntos = d.adjuntos.all()
    return {
        "id": d.pk,
        "tipo": d.tipo,
        "automatico": d.automatico,
        "autor": _persona(d.autor if d.autor_id else None),
        "de": d.de,
        "para": d.para,
        "cc": d.cc,
        "asunto": d.asunto,
        "texto": d.texto,
        "html": d.html,
        "fecha": _fecha(d.fecha),
        "creado": _fecha(d.creado),
        "adjuntos": [adjunto_json(a) for a in adjuntos],
    }


def ticket_detalle_json(ticket: Ticket, usuario) -> dict:
    """The ticket with its thread (`selectors.hilo`, as the ticket page reads it; internal
    notes only for agents): a constant number of queries whatever the thread's length."""
    detalles = selectors.hilo(ticket=ticket, incluir_notas=selectors.es_agente(usuario))
    fusionado = ticket.relacionado.numero if ticket.fusionado_en and ticket.relacionado else None
    return {
        **ticket_json(ticket, fusionado_numero=fusionado),
        "detalles": [detalle_json(d, d.lista_adjuntos) for d in detalles],
    }


# --- Examples -------------------------------------------------------------------------------

_EJEMPLO_TICKET = {
    "numero": 132,
    "asunto": "No hay internet",
    "estado": "abierto",
    "prioridad": "normal",
    "canal": "correo",
    "sla": "ok",
    "departamento": {"id": 1, "nombre": "Soporte"},
    "asignado": {"id": 7, "nombre": "Ana Agente", "email": "ana@example.com"},
    "solicitante": {"nombre": "Cliente", "email": "cliente@example.org"},
    "participantes": [],
    "fusionado_en": None,
    "creado": "2026-03-10T16:00:00+00:00",
    "actualizado": "2026-03-10T16:20:00+00:00",
    "primera_respuesta_en": "2026-03-10T16:20:00+00:00",
    "resuelto_en": None,
    "cerrado_en": None,
    "vence_primera_respuesta": "2026-03-10T17:00:00+00:00",
    "vence_resolucion": "2026-03-11T02:00:00+00:00",
    "url": "/api/v1/tickets/132",
}
_EJEMPLO_DETALLE = {
    "id": 1234,
    "tipo": "respuesta",
    "automatico": "",
    "autor": {"id": 7, "nombre": "Ana Agente", "email": "ana@example.com"},
    "de": "Soporte <soporte@example.com>",
    "para": "cliente@example.org",
    "cc": "",
    "asunto": "[Ticket #132] No hay internet",
    "texto": "Reinicie el módem, por favor.",
    "html": "",
    "fecha": "2026-03-10T16:20:00+00:00",
    "creado": "2026-03-10T16:20:00+00:00",
    "adjuntos": [
        {
            "id": 55,
            "nombre": "guia.pdf",
            "content_type": "application/pdf",
            "tamano": 20480,
            "en_linea": False,
            "url": "/api/v1/adjuntos/55",
        }
    ],
}


def _ejemplo(nombre, valor, *, request=False, status=200):
    if request:
        return OpenApiExample(nombre, value=valor, request_only=True)
    return OpenApiExample(nombre, value=valor, response_only=True, status_codes=[str(status)])


def _problema(status_code: int, detail: str, errors=None) -> OpenApiResponse:
    valor = {
        "type": "about:blank",
        "title": ENVELOPE_PROBLEMA.titulos[status_code],
        "status": status_code,
        "detail": detail,
        "instance": "/api/v1/tickets/132",
    }
    if errors:
        valor["errors"] = errors
    return OpenApiResponse(
        Problema,
        detail,
        examples=[
            OpenApiExample(str(status_code), value=valor, response_only=True, media_type=PROBLEMA)
        ],
    )


def respuestas(exito, *, status=200, escritura=False, extra=(), medio=None) -> dict:
    """An operation's answers: its success body and the problems it may answer."""
    errores = {
        400: _problema(400, "JSON mal formado."),
        401: _problema(401, "No autenticado."),
        403: _problema(403, "El token no tiene el permiso (scope) que pide este recurso."),
        404: _problema(404, "No existe ese ticket."),
    }
    if escritura:
        errores[413] = _problema(413, "El cuerpo de la solicitud excede el tamaño permitido.")
        errores[422] = _problema(422, "Datos inválidos.", {"texto": ["Este campo es requerido."]})
    for codigo in extra:
        errores[codigo] = _problema(codigo, ENVELOPE_PROBLEMA.titulos[codigo])
    exito = {(status, medio): exito} if medio else {status: exito}
    return {**exito, **{(codigo, PROBLEMA): r for codigo, r in errores.items()}}


# --- Cursor ---------------------------------------------------------------------------------


def _cursor(ticket: Ticket) -> str:
    crudo = json.dumps([ticket.creado.isoformat(), ticket.pk]).encode()
    return base64.urlsafe_b64encode(crudo).decode().rstrip("=")


def _leer_cursor(valor: str) -> tuple[datetime, int]:
    try:
        crudo = base64.urlsafe_b64decode(valor + "=" * (-len(valor) % 4))
        creado, pk = json.loads(crudo)
        creado = datetime.fromisoformat(creado)
        if not isinstance(pk, int) or creado.tzinfo is None:
            raise ValueError
        return creado, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "Cursor inválido.", errors={"cursor": ["Cursor inválido."]}) from None


# --- Views ----------------------------------------------------------------------------------

_FILTROS = [
    OpenApiParameter("departamento", int, description="Department id."),
    OpenApiParameter("estado", str, enum=Ticket.Estado.values),
    OpenApiParameter("prioridad", str, enum=Prioridad.values),
    OpenApiParameter("asignado", str, description='An agent\'s id, "yo" (me) or "ninguno".'),
    OpenApiParameter("sla", str, enum=EstadoSLA.values),
    OpenApiParameter("canal", str, enum=Ticket.Canal.values),
    OpenApiParameter("q", str, description="Full-text search (subject, requester, thread)."),
    OpenApiParameter("cursor", str, description="From a previous page's `next`."),
    OpenApiParameter("limite", int, description=f"Page size, 1–{PAGINA_MAX} ({PAGINA})."),
]


def _entero(valor: str, nombre: str) -> int:
    try:
        numero = int(valor)
        if not 0 < numero < 2**63:
            raise ValueError
        return numero
    except ValueError:
        raise ApiError(422, "Datos inválidos.", errors={nombre: ["Debe ser un entero."]}) from None


def _opcion(valor: str, nombre: str, opciones) -> str:
    if valor not in opciones:
        raise ApiError(
            422, "Datos inválidos.", errors={nombre: [f"Valor desconocido: {valor[:40]}."]}
        )
    return valor


class TicketsView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_listar",
        tags=["Tickets v1"],
        parameters=_FILTROS,
        responses=respuestas(PaginaSalida, extra=(422,)),
        description="Tickets the caller may see, newest first, a page at a time (keyset "
        "cursor: pages stay stable and cheap however deep).",
        examples=[
            _ejemplo(
                "Página",
                {"results": [_EJEMPLO_TICKET], "next": "/api/v1/tickets?cursor=WyIyMDI2LTAzLTEw"},
            )
        ],
    )
    def get(self, request):
        p = request.query_params
        tickets = selectors.tickets_para_usuario(usuario=request.user)
        if p.get("departamento"):
            tickets = tickets.filter(departamento_id=_entero(p["departamento"], "departamento"))
        if p.get("estado"):
            tickets = tickets.filter(estado=_opcion(p["estado"], "estado", Ticket.Estado.values))
        if p.get("prioridad"):
            tickets = tickets.filter(
                prioridad=_opcion(p["prioridad"], "prioridad", Prioridad.values)
            )
        if p.get("canal"):
            tickets = tickets.filter(canal=_opcion(p["canal"], "canal", Ticket.Canal.values))
        asignado = p.get("asignado")
        if asignado == "yo":
            tickets = tickets.filter(asignado_id=request.user.pk)
        elif asignado == "ninguno":
            tickets = tickets.filter(asignado__isnull=True)
        elif asignado:
            tickets = tickets.filter(asignado_id=_entero(asignado, "asignado"))
        if p.get("q"):
            tickets = selectors.ticket_buscar(texto=p["q"], tickets=tickets)
        sla = _opcion(p["sla"], "sla", EstadoSLA.values) if p.get("sla") else None
        tickets = selectors.tickets_sla(tickets=tickets, estado=sla)
        limite = min(_entero(p["limite"], "limite"), PAGINA_MAX) if p.get("limite") else PAGINA
        if p.get("cursor"):
            creado, pk = _leer_cursor(p["cursor"])
            tickets = tickets.filter(creado__lte=creado).exclude(creado=creado, pk__gte=pk)
        pagina = list(
            tickets.select_related("departamento", "asignado")
            .defer("busqueda")
            .order_by("-creado", "-id")[: limite + 1]
        )
        siguiente = None
        if len(pagina) > limite:
            pagina = pagina[:limite]
            consulta = p.copy()
            consulta["cursor"] = _cursor(pagina[-1])
            siguiente = f"{request.path}?{consulta.urlencode()}"
        return Response({"results": [ticket_json(t) for t in pagina], "next": siguiente})

    @extend_schema(
        operation_id="tickets_v1_crear",
        tags=["Tickets v1"],
        request=TicketEntrada,
        responses=respuestas(TicketDetalleSalida, status=201, escritura=True),
        description="A ticket opened by an external system (channel `api`), as mail's are: "
        "numbered, given an agent by the department's rule, its SLA clock started, and the "
        "requester acknowledged. The caller must be able to work the department's tickets.",
        examples=[
            _ejemplo(
                "Ticket",
                {
                    "departamento": 1,
                    "asunto": "No hay internet",
                    "texto": "Sin servicio desde ayer.",
                    "solicitante_nombre": "Cliente",
                    "solicitante_email": "cliente@example.org",
                    "prioridad": "normal",
                },
                request=True,
            ),
            _ejemplo("Creado", {**_EJEMPLO_TICKET, "detalles": []}, status=201),
        ],
    )
    def post(self, request):
        datos = self.datos(TicketEntrada)
        departamento = Departamento.objects.filter(pk=datos["departamento"], activo=True).first()
        if departamento is None:
            raise ApiError(
                422, "Datos inválidos.", errors={"departamento": ["Departamento inexistente."]}
            )
        if not selectors.puede_trabajar(request.user, Ticket(departamento=departamento)):
            raise ApiError(403, "No puede abrir tickets en ese departamento.")
        ticket = services.ticket_crear_manual(
            departamento=departamento,
            asunto=datos["asunto"],
            texto=datos["texto"],
            solicitante_nombre=datos["solicitante_nombre"],
            solicitante_email=datos["solicitante_email"],
            prioridad=datos["prioridad"],
            por=request.user,
            canal=Ticket.Canal.API,
        )
        ticket = self.ticket(ticket.numero)
        cuerpo = ticket_detalle_json(ticket, request.user)
        return Response(cuerpo, status=201, headers={"Location": cuerpo["url"]})


class TicketView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_detalle",
        tags=["Tickets v1"],
        responses=respuestas(TicketDetalleSalida),
        description="A ticket with its thread: inbound mail, our replies, system events and "
        "(for agents) internal notes, in order; attachments as download links.",
        examples=[_ejemplo("Ticket", {**_EJEMPLO_TICKET, "detalles": [_EJEMPLO_DETALLE]})],
    )
    def get(self, request, numero: int):
        ticket = self.ticket(numero)
        ticket = selectors.tickets_sla(tickets=Ticket.objects.filter(pk=ticket.pk)).get()
        return Response(ticket_detalle_json(ticket, request.user))


def _tras_cambio(vista: TicketsAPIView, ticket: Ticket, status_code: int = 200) -> Response:
    ticket = selectors.tickets_sla(
        tickets=Ticket.objects.filter(pk=ticket.pk).select_related("departamento", "asignado")
    ).get()
    return Response(ticket_json(ticket), status=status_code)


class RespuestasView(TicketsAPIView):
    # Attachments travel in the body (base64): the mail pipeline's limit, not the API's.
    max_body_bytes = max(settings.API_MAX_BODY_BYTES, settings.INGEST_MAX_BYTES * 4 // 3)

    @extend_schema(
        operation_id="tickets_v1_responder",
        tags=["Tickets v1"],
        request=RespuestaEntrada,
        responses=respuestas(DetalleSalida, status=201, escritura=True, extra=(409,)),
        description="Reply to the requester by mail (queued in the outbox; sent with the "
        "ticket's tag, our Message-ID and the thread's In-Reply-To/References). `estado` "
        "moves the ticket (e.g. `en_espera`); without it a new ticket becomes open.",
        examples=[
            _ejemplo(
                "Respuesta",
                {
                    "texto": "Reinicie el módem, por favor.",
                    "cc": ["jefe@example.org"],
                    "estado": "en_espera",
                    "adjuntos": [
                        {"nombre": "guia.pdf", "content_type": "application/pdf",
                         "contenido": "JVBERi0xLjQK"}
                    ],
                },
                request=True,
            ),
            _ejemplo("Enviada", _EJEMPLO_DETALLE, status=201),
        ],
    )  # fmt: skip
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(RespuestaEntrada)
        detalle = services.ticket_responder(
            ticket=ticket,
            autor=request.user,
            texto=datos["texto"],
            html=datos["html"],
            cc=datos["cc"],
            adjuntos=[
                services.AdjuntoNuevo(a["nombre"], a["contenido"], a["content_type"])
                for a in datos["adjuntos"]
            ],
            estado=datos.get("estado"),
        )
        detalle = DetalleTicket.objects.select_related("autor").get(pk=detalle.pk)
        return Response(detalle_json(detalle), status=201)


class NotasView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_anotar",
        tags=["Tickets v1"],
        request=NotaEntrada,
        responses=respuestas(DetalleSalida, status=201, escritura=True, extra=(409,)),
        description="An internal note: only agents see it; nobody is mailed.",
        examples=[
            _ejemplo("Nota", {"texto": "El cliente es VIP."}, request=True),
            _ejemplo(
                "Anotada",
                {**_EJEMPLO_DETALLE, "tipo": "nota", "texto": "El cliente es VIP.", "de": "",
                 "para": "", "asunto": "", "adjuntos": []},
                status=201,
            ),
        ],
    )  # fmt: skip
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(NotaEntrada)
        nota = services.ticket_anotar(ticket=ticket, autor=request.user, texto=datos["texto"])
        nota = DetalleTicket.objects.select_related("autor").get(pk=nota.pk)
        return Response(detalle_json(nota), status=201)


class AsignarView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_asignar",
        tags=["Tickets v1"],
        request=AsignarEntrada,
        responses=respuestas(TicketSalida, escritura=True, extra=(409,)),
        description="Give the ticket to an agent (an active user who works tickets), or back "
        "to the queue with null.",
        examples=[
            _ejemplo("Agente", {"agente": 7}, request=True),
            _ejemplo("Asignado", _EJEMPLO_TICKET),
        ],
    )
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(AsignarEntrada)
        agente = None
        if datos["agente"] is not None:
            agente = Usuario.objects.filter(pk=datos["agente"], is_active=True).first()
            if agente is None or not selectors.es_agente(agente):
                raise ApiError(
                    422, "Datos inválidos.", errors={"agente": ["Agente inexistente o inactivo."]}
                )
        ticket = services.ticket_asignar(ticket=ticket, agente=agente, por=request.user)
        return _tras_cambio(self, ticket)


class EstadoView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_estado",
        tags=["Tickets v1"],
        request=EstadoEntrada,
        responses=respuestas(TicketSalida, escritura=True, extra=(409,)),
        description="Move the ticket to a state; the SLA clock stops while it waits on the "
        "customer or is solved, and runs again when it comes back.",
        examples=[
            _ejemplo("Resuelto", {"estado": "resuelto"}, request=True),
            _ejemplo("Cambiado", {**_EJEMPLO_TICKET, "estado": "resuelto"}),
        ],
    )
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(EstadoEntrada)
        ticket = services.ticket_cambiar_estado(
            ticket=ticket, estado=datos["estado"], por=request.user
        )
        return _tras_cambio(self, ticket)


class PrioridadView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_prioridad",
        tags=["Tickets v1"],
        request=PrioridadEntrada,
        responses=respuestas(TicketSalida, escritura=True, extra=(409,)),
        description="Change the priority; the SLA due dates follow that priority's policy.",
        examples=[
            _ejemplo("Urgente", {"prioridad": "urgente"}, request=True),
            _ejemplo("Cambiada", {**_EJEMPLO_TICKET, "prioridad": "urgente"}),
        ],
    )
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(PrioridadEntrada)
        ticket = services.ticket_cambiar_prioridad(
            ticket=ticket, prioridad=datos["prioridad"], por=request.user
        )
        return _tras_cambio(self, ticket)


class TransferirView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_transferir",
        tags=["Tickets v1"],
        request=TransferirEntrada,
        responses=respuestas(TicketSalida, escritura=True, extra=(409,)),
        description="Hand the ticket to another department: its queue rule picks the agent "
        "and its policy sets the SLA due dates.",
        examples=[
            _ejemplo("Redes", {"departamento": 2}, request=True),
            _ejemplo(
                "Transferido", {**_EJEMPLO_TICKET, "departamento": {"id": 2, "nombre": "Redes"}}
            ),
        ],
    )
    def post(self, request, numero: int):
        ticket = self.ticket_trabajable(numero)
        datos = self.datos(TransferirEntrada)
        departamento = Departamento.objects.filter(pk=datos["departamento"], activo=True).first()
        if departamento is None:
            raise ApiError(
                422, "Datos inválidos.", errors={"departamento": ["Departamento inexistente."]}
            )
        ticket = services.ticket_transferir(
            ticket=ticket, departamento=departamento, por=request.user
        )
        return _tras_cambio(self, ticket)


class FusionarView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_fusionar",
        tags=["Tickets v1"],
        request=FusionarEntrada,
        responses=respuestas(TicketSalida, escritura=True, extra=(409,)),
        description="Merge this ticket into `destino` (which the caller must be able to work "
        "too): the thread moves there, this ticket is closed, and later mail for it lands "
        "there. Answers the ticket merged into.",
        examples=[
            _ejemplo("Destino", {"destino": 120}, request=True),
            _ejemplo("Fusionado", {**_EJEMPLO_TICKET, "numero": 120}),
        ],
    )
    def post(self, request, numero: int):
        origen = self.ticket_trabajable(numero)
        datos = self.datos(FusionarEntrada)
        try:
            destino = self.ticket_trabajable(datos["destino"])
        except (Ticket.DoesNotExist, ApiError):
            raise ApiError(
                422, "Datos inválidos.", errors={"destino": ["No existe ese ticket."]}
            ) from None
        destino = services.ticket_fusionar(origen=origen, destino=destino, por=request.user)
        return _tras_cambio(self, destino)


# Shown in the browser rather than downloaded: raster images only (never SVG, HTML, PDF…).
IMAGENES_EN_LINEA = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class AdjuntoView(TicketsAPIView):
    @extend_schema(
        operation_id="tickets_v1_adjunto",
        tags=["Tickets v1"],
        responses=respuestas(
            OpenApiResponse(
                OpenApiTypes.BINARY,
                "The file; `Content-Disposition: attachment` unless a raster image.",
                examples=[
                    OpenApiExample(
                        "Archivo",
                        value="(the file's bytes)",
                        response_only=True,
                        media_type="application/octet-stream",
                    )
                ],
            ),
            medio="application/octet-stream",
        ),
        description="An attachment of a ticket the caller may see (internal notes' only for "
        "agents); 404 otherwise.",
    )
    def get(self, request, id: int):
        adjunto = (
            Adjunto.objects.select_related("detalle")
            .filter(
                pk=id,
                detalle__ticket__in=selectors.tickets_para_usuario(usuario=request.user),
            )
            .first()
        )
        if adjunto is None or (
            adjunto.detalle.tipo == DetalleTicket.Tipo.NOTA
            and not selectors.es_agente(request.user)
        ):
            raise ApiError(404, "No existe ese adjunto.")
        tipo = (adjunto.content_type or "application/octet-stream").lower()
        en_linea = tipo in IMAGENES_EN_LINEA
        respuesta = FileResponse(
            adjunto.archivo.open("rb"),
            content_type=tipo if en_linea else "application/octet-stream",
        )
        respuesta["Content-Disposition"] = content_disposition_header(not en_linea, adjunto.nombre)
        respuesta["X-Content-Type-Options"] = "nosniff"
        respuesta["Content-Security-Policy"] = "default-src 'none'; sandbox"
        respuesta["Cache-Control"] = "private, no-store"
        return respuesta
