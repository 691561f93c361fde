"""Error pages: JSON in the caller's API family under /api/, HTML elsewhere.

These answer requests no API view handled (an unknown path, a crash outside a view). API
views shape their own errors through `sso.api.envelopes.exception_handler`.
"""

import logging
import re
import time

from django.http import JsonResponse
from django.views import defaults
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import NotFound

from sso import bitacora
from sso.api.envelopes import (
    ENVELOPE_A,
    ENVELOPE_B,
    ENVELOPE_C,
    ENVELOPE_D,
    ENVELOPE_PROBLEMA,
    Envelope,
)

logger = logging.getLogger("incidencias.api")

# Path prefix -> envelope of the family mounted there; the longest match wins.
API_FAMILIES: list[tuple[str, Envelope]] = [
    ("/api/", ENVELOPE_A),
    ("/v2/", ENVELOPE_B),
    ("/api/integra/", ENVELOPE_C),
    ("/api/auth/", ENVELOPE_D),
    ("/api/user", ENVELOPE_D),
    ("/api/app-sessions", ENVELOPE_D),
    ("/api/v1/", ENVELOPE_PROBLEMA),
]


class FiltroInformeErrores(SafeExceptionReporterFilter):
    """Django's filter, also hiding settings that are URLs with credentials in them, and
    active with DEBUG on too: keys and secrets marked with `sensitive_variables` never show
    on an error page, in a report or in a tool that reads frames through it."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|LOCATION|BACKEND", flags=re.I
    )

    def is_active(self, request):
        return True


def envelope_for(path: str) -> Envelope | None:
    best = None
    for prefix, envelope in API_FAMILIES:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, envelope)
    return best[1] if best else None


def _api_error(request, envelope: Envelope, status_code: int) -> JsonResponse:
    started = time.perf_counter()
    body = envelope.error(status_code=status_code, message=envelope.message_for(status_code))
    status_code = envelope.http_status(status_code)
    if envelope is ENVELOPE_A:
        body["id_bitacora_log"] = bitacora.bitacora_de_solicitud(
            request, estado=status_code, inicio=started
        )
    elif envelope is ENVELOPE_B:  # audited too, without an id in the answer
        bitacora.bitacora_de_solicitud(request, estado=status_code, inicio=started)
    content_type = "application/json"
    if envelope is ENVELOPE_PROBLEMA:  # RFC 7807
        body["instance"] = request.path
        content_type = "application/problem+json"
    return JsonResponse(
        body,
        status=status_code,
        content_type=content_type,
        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")},
    )


def bad_request(request, exception=None):
    envelope = envelope_for(request.path)
    if envelope is not None:
        return _api_error(request, envelope, 400)
    return defaults.bad_request(request, exception)


@csrf_exempt
def not_found(request, exception=None):
    envelope = envelope_for(request.path)
    if envelope is not None:
        return _api_error(request, envelope, NotFound.status_code)
    return defaults.page_not_found(request, exception)


def server_error(request):
    envelope = envelope_for(request.path)
    if envelope is not None:
        return _api_error(request, envelope, 500)
    return defaults.server_error(request)
