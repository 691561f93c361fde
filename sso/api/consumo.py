"""The consumo family (seed 000): consumer-header authentication, envelope A and the audit log.

Every consumo endpoint subclasses `ConsumoAPIView` and names the permission it needs. The base
class authenticates the headers, refuses a consumer without that permission, shapes every
answer (errors included) as envelope A, and writes one bitácora row per call whose id goes
back as `id_bitacora_log`.
"""

import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import translation
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from .. import bitacora
from ..consumidores import Consumidor, consumidor_autenticar
from .envelopes import ENVELOPE_A, ApiError
from .parsers import JSONParser

HEADER_NAME = "HTTP_X_USER_CONSUMO"
HEADER_SECRET = "HTTP_X_USER_SECRET"  # noqa: S105 - a header name, not a secret


class ConsumoAuthentication(BaseAuthentication):
    """`X-User-Consumo` + `X-User-Secret` (from an allowed address); anything missing or wrong
    is a 401."""

    def authenticate(self, request):
        nombre = request.META.get(HEADER_NAME, "")
        secreto = request.META.get(HEADER_SECRET, "")
        # The client address honours TRUSTED_PROXIES; a consumer called from an address not in
        # its list gets the same 401 as a wrong secret (the reason goes to the log).
        consumidor = consumidor_autenticar(
            nombre=nombre, secreto=secreto, ip=bitacora.client_ip(request)
        )
        if consumidor is None:
            raise exceptions.AuthenticationFailed()
        return AnonymousUser(), consumidor

    def authenticate_header(self, request):
        return "X-User-Secret"


class ConsumoAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ConsumoAuthentication
    name = ["ConsumoUser", "ConsumoSecret"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-User-Consumo"},
            {"type": "apiKey", "in": "header", "name": "X-User-Secret"},
        ]

    def get_security_requirement(self, auto_schema):
        return {"ConsumoUser": [], "ConsumoSecret": []}


class TienePermisoConsumo(BasePermission):
    """The consumer holds the view's `permiso` (one purpose per consumer)."""

    def has_permission(self, request, view):
        consumidor = request.auth
        return isinstance(consumidor, Consumidor) and view.permiso in consumidor.permisos


class ConsumoRateThrottle(SimpleRateThrottle):
    """Requests per consumer and endpoint, at CONSUMO_RATE ("600/min"; empty: no limit)."""

    scope = "consumo"

    def get_rate(self):
        return settings.CONSUMO_RATE or None

    def get_cache_key(self, request, view):
        consumidor = request.auth
        if not isinstance(consumidor, Consumidor):
            return None
        return f"throttle:consumo:{consumidor.id}:{view.__class__.__name__}"


class IgnoreAccept(BaseContentNegotiation):
    """JSON whatever the client's Accept header says: the contract has one format."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ConsumoAPIView(APIView):
    envelope = ENVELOPE_A
    content_negotiation_class = IgnoreAccept
    metadata_class = None  # OPTIONS is a 405 like any other unsupported method
    authentication_classes = [ConsumoAuthentication]
    permission_classes = [TienePermisoConsumo]
    throttle_classes = [ConsumoRateThrottle]
    parser_classes = [JSONParser]
    permiso: str = ""
    max_body_bytes: int | None = None
    # Whether answers carry their audit row's id (`id_bitacora_log`, envelope A).
    id_bitacora_en_respuesta = True

    def dispatch(self, request, *args, **kwargs):
        self._started = time.perf_counter()
        with translation.override(settings.LANGUAGE_CODE):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
            "CONTENT_LENGTH"
        ):
            # Django reads no body without Content-Length: refuse rather than act on nothing.
            raise ApiError(411, self.envelope.message_for(411))
        super().initial(request, *args, **kwargs)

    _validadores: dict = {}

    @classmethod
    def validar(cls, serializer_class, data) -> dict:
        """`data` validated by `serializer_class` (422 with field errors otherwise).

        DRF builds a serializer's fields anew for every instance, deep-copying each one, which
        costs more than this API's query. The fields of an input serializer hold no state of
        a request, so one instance per class, built on first use, validates every request.
        """
        validador = cls._validadores.get(serializer_class)
        if validador is None:
            validador = cls._validadores.setdefault(serializer_class, serializer_class())
            validador.fields  # noqa: B018 - built now, once
        return validador.run_validation(data)

    def ok(self, data=None, message: str = "", status_code: int = 200) -> Response:
        body = self.envelope.success(data=data, message=message, status_code=status_code)
        return Response(body, status=status_code)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        entry_id = self._log(request, response)
        data = getattr(response, "data", None)
        if (
            self.id_bitacora_en_respuesta
            and isinstance(data, dict)
            and data != ENVELOPE_A.UNAUTHORIZED
        ):
            data["id_bitacora_log"] = entry_id
        return response

    def _log(self, request, response) -> int | None:
        consumidor = getattr(request, "auth", None) if hasattr(request, "_authenticator") else None
        consumidor = consumidor if isinstance(consumidor, Consumidor) else None
        user = getattr(request, "_user", None)
        body = getattr(request, "_full_data", None)
        return bitacora.bitacora_de_solicitud(
            request,
            estado=response.status_code,
            inicio=getattr(self, "_started", time.perf_counter()),
            consumidor_id=consumidor.id if consumidor else None,
            consumidor_intentado=request.META.get(HEADER_NAME, ""),
            usuario_id=user.pk if getattr(user, "is_authenticated", False) else None,
            body=body if isinstance(body, dict) else None,
        )
