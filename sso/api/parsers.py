"""Request parsers with a per-view size limit and strict JSON.

Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (the largest any view accepts) before
reading them; these parsers then hold each view to its own `max_body_bytes`.
"""

import codecs
import json

from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


def body_limit(parser_context) -> int:
    view = (parser_context or {}).get("view")
    return getattr(view, "max_body_bytes", None) or settings.API_MAX_BODY_BYTES


def read_bounded(stream, request, limit: int) -> bytes:
    """Read at most `limit` bytes of the body; 413 when the client sent (or declared) more."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise RequestTooLarge()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise RequestTooLarge()
    return data


class JSONParser(parsers.JSONParser):
    """JSON with a size limit (the view's `max_body_bytes` or API_MAX_BODY_BYTES)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        raw = read_bounded(stream, request, body_limit(parser_context))
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            codecs.lookup(encoding)
            text = raw.decode(encoding)
            if not text.strip():
                return {}
            return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except (LookupError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ParseError("JSON parse error") from exc


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


class FormParser(parsers.FormParser):
    """URL-encoded forms with the same size limit (webhooks that cannot send JSON)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        raw = read_bounded(stream, request, body_limit(parser_context))
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            codecs.lookup(encoding)
            return QueryDict(raw, encoding=encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError("Form parse error") from exc
