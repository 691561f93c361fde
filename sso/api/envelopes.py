"""Error envelopes of the API families, and the one exception handler that uses them.

A view names its family with `envelope = ...`; the handler turns every exception (DRF's,
Django's, or an unexpected one) into that family's error body with the right status, so no
view writes its own error code and nothing returns a bare 500.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .parsers import RequestTooLarge

logger = logging.getLogger("incidencias.api")


class Envelope:
    """How one API family shapes its answers."""

    messages = {
        400: "JSON mal formado.",
        401: "No autenticado.",
        403: "No autorizado para este recurso.",
        404: "Recurso no encontrado.",
        405: "Método no permitido.",
        406: "Formato de respuesta no aceptable.",
        411: "Se requiere la cabecera Content-Length.",
        413: "El cuerpo de la solicitud excede el tamaño permitido.",
        415: "Tipo de contenido no soportado.",
        422: "Datos inválidos.",
        429: "Demasiadas solicitudes. Intente más tarde.",
        500: "Error interno del servidor.",
    }

    def message_for(self, status_code: int) -> str:
        return self.messages.get(status_code, "Error.")

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        body = {"success": False, "message": message}
        if errors:
            body["errors"] = errors
        return body

    def success(self, *, data=None, message: str = "", status_code: int = 200) -> dict:
        return {"success": True, "message": message, "data": data}

    def http_status(self, status_code: int) -> int:
        """The HTTP status this family answers for an error of `status_code`."""
        return status_code


class EnvelopeA(Envelope):
    """Consumo (seed 000): `{data, status, message, code, id_bitacora_log}`."""

    UNAUTHORIZED = {"message": "Credenciales de consumo inválidas"}

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        # A 401 is the consumer-header answer, unless the view gave `data` (ApiError(data=...)):
        # then it is a full envelope, e.g. SSO/ADI/Token's `{"authenticated": false, ...}`.
        if status_code == 401 and data is None:
            return dict(self.UNAUTHORIZED)
        body = {"data": data, "status": "error", "message": message, "code": status_code}
        if errors:
            body["errors"] = errors
        return body

    def success(self, *, data=None, message: str = "", status_code: int = 200) -> dict:
        return {"data": data, "status": "ok", "message": message, "code": status_code}


ENVELOPE_A = EnvelopeA()


class EnvelopeB(Envelope):
    """Token (seed 001): `{IsValid, Warnings, Errors, ResultData, ResultCode}`.

    The family has no message: what other families say in `message` is here an error's `Code`
    (`IdentificationDoesNotMatch`, or one per status below). Field errors become one entry per
    field, with the reason in `Description`. `ResultCode` is the HTTP status, which is 400 for
    anything wrong with the request itself (validation and content type included), or 413.
    """

    messages = {
        400: "InvalidRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        406: "NotAcceptable",
        411: "LengthRequired",
        413: "RequestTooLarge",
        415: "UnsupportedMediaType",
        422: "InvalidValue",
        429: "TooManyRequests",
        500: "InternalError",
    }
    _STATUS = {415: 400, 422: 400}

    def http_status(self, status_code: int) -> int:
        return self._STATUS.get(status_code, status_code)

    @staticmethod
    def entry(code: str, *, field: str | None = None, description: str | None = None) -> dict:
        return {"Field": field, "Code": code, "Description": description, "ExplanationValues": []}

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        if errors:
            entries = [
                self.entry(message, field=None if field == "non_field_errors" else field,
                           description=" ".join(map(str, reasons)) if isinstance(reasons, list)
                           else str(reasons))
                for field, reasons in errors.items()
            ]  # fmt: skip
        else:
            entries = [self.entry(message)]
        return {
            "IsValid": False,
            "Warnings": [],
            "Errors": entries,
            "ResultData": None,
            "ResultCode": self.http_status(status_code),
        }

    def success(self, *, data=None, message: str = "", status_code: int = 200) -> dict:
        return {
            "IsValid": True,
            "Warnings": [],
            "Errors": [],
            "ResultData": data,
            "ResultCode": status_code,
        }


ENVELOPE_B = EnvelopeB()


class EnvelopeC(Envelope):
    """Integra (seed 002): `{data, message, success}`; errors add `errors` with `data: null`."""

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        body = {"data": data, "message": message, "success": False}
        if errors:
            body["errors"] = errors
        return body

    def success(self, *, data=None, message: str = "", status_code: int = 200) -> dict:
        return {"data": data, "message": message, "success": True}


ENVELOPE_C = EnvelopeC()


class EnvelopeD(Envelope):
    """Auth (seed 003): `{success, message, data}`; errors `{success: false, message, errors}`."""

    messages = {
        **Envelope.messages,
        401: "No autenticado.",
        403: "No autorizado.",
        415: "Tipo de contenido no soportado. Use application/json.",
        422: "Error de validación.",
    }


ENVELOPE_D = EnvelopeD()


PROBLEMA = "application/problem+json"


class EnvelopeProblema(Envelope):
    """RFC 7807 problem details (Tickets API v1), served as `application/problem+json`:
    `type` (about:blank, or a URN naming a domain error passed as `data={"type": …}`), `title`
    (the status's phrase), `status`, `detail` (what happened), `errors` (field → messages);
    the view or the error page adds `instance` (the request's path)."""

    titulos = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        409: "Conflict",
        411: "Length Required",
        413: "Content Too Large",
        415: "Unsupported Media Type",
        422: "Unprocessable Content",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }

    def error(self, *, status_code: int, message: str, errors=None, data=None) -> dict:
        body = {
            "type": (data or {}).get("type", "about:blank"),
            "title": self.titulos.get(status_code, "Error"),
            "status": status_code,
            "detail": message,
        }
        if errors:
            body["errors"] = errors
        return body

    def success(self, *, data=None, message: str = "", status_code: int = 200) -> dict:
        return data


ENVELOPE_PROBLEMA = EnvelopeProblema()


class ApiError(exceptions.APIException):
    """An error a view raises on purpose, with the family's message and optional field errors.

    `data` goes into the envelope's `data` (envelope A); with it, a 401 is a full envelope A
    rather than the consumer-header body.
    """

    def __init__(
        self, status_code: int, message: str, errors: dict | None = None, data: dict | None = None
    ):
        super().__init__(detail=message)
        self.status_code = status_code
        self.envelope_message = message
        self.errors = errors
        self.envelope_data = data


DEFAULT_ENVELOPE = Envelope()


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            if not isinstance(value, dict)
            else _field_errors(value)
            for key, value in detail.items()
        }
    items = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(item) for item in items]}


def classify(exc) -> tuple[int, dict | None, dict]:
    """(status, field errors, extra headers) for an exception."""
    headers = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, None, headers
    elif isinstance(exc, SuspiciousOperation | UnreadablePostError):
        return status.HTTP_400_BAD_REQUEST, None, headers
    elif isinstance(exc, DjangoValidationError):
        errors = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return status.HTTP_422_UNPROCESSABLE_ENTITY, errors, headers
    if isinstance(exc, exceptions.ValidationError):
        return status.HTTP_422_UNPROCESSABLE_ENTITY, _field_errors(exc.detail), headers
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        return status.HTTP_401_UNAUTHORIZED, None, headers
    if isinstance(exc, exceptions.ParseError):
        return status.HTTP_400_BAD_REQUEST, None, headers
    if isinstance(exc, ApiError):
        return exc.status_code, exc.errors, headers
    if isinstance(exc, RequestTooLarge | exceptions.APIException):
        return exc.status_code, None, headers
    return status.HTTP_500_INTERNAL_SERVER_ERROR, None, headers


def error_response(envelope: Envelope, exc) -> Response:
    status_code, errors, headers = classify(exc)
    if status_code >= 500:
        logger.exception("Unhandled error in API view", exc_info=exc)
    message = getattr(exc, "envelope_message", None) or envelope.message_for(status_code)
    data = getattr(exc, "envelope_data", None)
    body = envelope.error(status_code=status_code, message=message, errors=errors, data=data)
    return Response(body, status=envelope.http_status(status_code), headers=headers)


def exception_handler(exc, context):
    view = context.get("view")
    envelope = getattr(view, "envelope", None) or DEFAULT_ENVELOPE
    set_rollback()
    return error_response(envelope, exc)
