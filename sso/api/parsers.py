"""Request parsers that refuse oversized bodies before reading them whole."""

import codecs
import json

from django.conf import settings
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
            return json.loads(text, parse_constant=_reject_constant) if text.strip() else {}
        except (LookupError, UnicodeDecodeError, ValueError) as exc:
            raise ParseError("JSON parse error") from exc


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class FormParser(parsers.FormParser):
    """URL-encoded forms with the same size limit."""

    def parse(self, stream, media_type=None, parser_context=None):
        from io import BytesIO

        parser_context = parser_context or {}
        raw = read_bounded(stream, parser_context["request"], body_limit(parser_context))
        return super().parse(BytesIO(raw), media_type, parser_context)
