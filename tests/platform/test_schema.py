"""The OpenAPI schema documents every API endpoint with examples; the docs work offline."""

import re

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from rest_framework.views import APIView

pytestmark = pytest.mark.django_db


def _api_views(patterns=None, prefix=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "cls", None)
            if view and issubclass(view, APIView) and not view.__module__.startswith("drf_"):
                # Django's `<str:id>` is OpenAPI's `{id}`.
                yield re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + prefix + str(entry.pattern))


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_it_is_a_valid_openapi_document(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_it_documents_every_api_endpoint(schema):
    views = set(_api_views())
    assert "/api/UsuarioInterno/get" in views
    assert views <= set(schema["paths"])


def test_every_operation_has_examples_and_its_error_answers(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            success = operation["responses"].get("200") or operation["responses"].get("201")
            assert success, f"{method} {path} has no success response"
            contenidos = success["content"]
            # JSON, or a file download (Tickets v1 attachments) documented as its media type.
            content = contenidos.get("application/json") or next(iter(contenidos.values()))
            assert content.get("examples"), f"{method} {path} has no response example"
            if method in ("post", "put", "patch"):
                body = operation["requestBody"]["content"]["application/json"]
                assert body.get("examples"), f"{method} {path} has no request example"
            if "security" in operation:
                assert "401" in operation["responses"], f"{method} {path} lacks its 401"


def test_the_consumo_401_is_the_exact_contract_body(schema):
    answer = schema["paths"]["/api/UsuarioInterno/get"]["post"]["responses"]["401"]
    examples = answer["content"]["application/json"]["examples"]
    assert {"message": "Credenciales de consumo inválidas"} in [
        e["value"] for e in examples.values()
    ]


def test_the_docs_page_needs_no_outside_host(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "jsdelivr" not in html
