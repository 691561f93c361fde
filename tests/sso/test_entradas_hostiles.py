"""Hostile and odd input on the consumo API: always the envelope, always an audit row."""

import json
from base64 import b64encode

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.views.debug import ExceptionReporter
from rest_framework.test import APIClient

from sso import crypto
from sso.models import Bitacora, ConsumidorAPI

from ..platform.processes import base_env, run_python

URL = "/api/UsuarioInterno/get"
pytestmark = pytest.mark.django_db


def post_raw(api, headers, raw: bytes, **extra):
    return api.generic("POST", URL, raw, content_type="application/json", **headers, **extra)


def test_a_body_over_djangos_own_limit_is_413(api, consumer):
    _, headers = consumer
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = post_raw(api, headers, json.dumps({"user": "x" * 5000}).encode())
    assert response.status_code == 413
    assert response.json()["code"] == 413
    assert Bitacora.objects.get().estado == 413


def test_a_body_over_the_views_limit_is_413_with_the_real_settings(api, consumer, settings):
    _, headers = consumer
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE > settings.API_MAX_BODY_BYTES
    response = post_raw(api, headers, json.dumps({"user": "x" * 2_000_000}).encode())
    assert response.status_code == 413


def test_deeply_nested_json_is_400(api, consumer):
    _, headers = consumer
    response = post_raw(api, headers, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response.json()["message"] == "JSON mal formado."


def test_an_out_of_range_integer_is_422(api, consumer):
    _, headers = consumer
    response = post_raw(api, headers, b'{"departamento": 9223372036854775808}')
    assert response.status_code == 422
    assert "departamento" in response.json()["errors"]


def test_an_infinite_number_is_400_and_audited(api, consumer):
    _, headers = consumer
    response = post_raw(api, headers, b'{"x": 1e400}')
    assert response.status_code == 400
    assert response.json()["id_bitacora_log"] == Bitacora.objects.get().pk


@pytest.mark.parametrize(
    "body", [{"user": "a\u0000b"}, {"otro": "\ud800"}, {"\u0000clave": 1}, {"n": [1.5, "x" * 9000]}]
)
def test_odd_values_never_cost_the_audit_row(api, consumer, body):
    _, headers = consumer
    raw = json.dumps(body).encode()  # \u escapes: valid JSON, odd strings
    response = post_raw(api, headers, raw)
    assert response.status_code in (200, 422)
    row_id = response.json()["id_bitacora_log"]
    assert row_id == Bitacora.objects.get().pk
    assert len(json.dumps(Bitacora.objects.get().resumen)) < 5000


def test_a_nul_in_the_query_or_path_is_still_audited(api):
    response = api.post(URL + "?x=%00", {}, format="json")
    assert response.status_code == 401
    response = api.post("/api/nada%00", {}, format="json")
    assert response.status_code == 404
    assert response.json()["id_bitacora_log"] == Bitacora.objects.latest("id").pk
    assert Bitacora.objects.count() == 2


def test_an_unknown_path_is_404_even_with_csrf_checks():
    api = APIClient(enforce_csrf_checks=True)
    response = api.post("/api/UsuarioInterno/nada", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_options_is_405_in_the_envelope(api, consumer):
    _, headers = consumer
    response = api.options(URL, **headers)
    assert response.status_code == 405
    assert response.json()["code"] == 405


def test_a_chunked_body_without_length_is_411(api, consumer):
    _, headers = consumer
    response = api.generic(
        "POST", URL, b"", content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked", **headers,
    )  # fmt: skip
    assert response.status_code == 411
    assert response.json()["code"] == 411


def test_any_accept_header_gets_json(api, consumer):
    _, headers = consumer
    response = api.post(URL, {}, format="json", HTTP_ACCEPT="application/xml", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


def test_a_bad_host_on_the_api_is_400_in_the_envelope(api, consumer):
    _, headers = consumer
    response = api.post(URL, {}, format="json", HTTP_HOST="evil.example.net", **headers)
    assert response.status_code == 400
    assert response.json()["code"] == 400


@pytest.fixture
def una_clave(settings):
    settings.ENCRYPTION_KEYS = f"k1:{crypto.generate_key()}"


def test_the_error_page_of_a_tampered_secret_shows_no_key(rf, settings, una_clave):
    # Nothing in this frame holds the key: only what crypto's own frames hold could leak.
    token = crypto.encrypt("clave-" + "super-secreta", "a.b")  # split: the page shows source
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    try:
        crypto.decrypt(tampered, "a.b")
    except crypto.DecryptionError as exc:
        error = exc
    settings.DEBUG = True
    reporter = ExceptionReporter(rf.get("/"), type(error), error, error.__traceback__)
    html = reporter.get_traceback_html()
    raw_key = crypto.keyring().keys["k1"]
    assert b64encode(raw_key).decode() not in html
    assert repr(raw_key)[2:-1][:20] not in html
    assert "clave-super-secreta" not in html


def test_a_new_consumers_secret_never_travels_in_a_cookie(admin_client):
    response = admin_client.post(
        "/admin/sso/consumidorapi/add/",
        {"nombre": "portal", "descripcion": "", "permisos": ["usuarios"], "activo": "on"},
    )
    assert response.status_code == 302
    cookies = " ".join(morsel.value for morsel in response.cookies.values())
    page = admin_client.get(response["Location"]).content.decode()
    secret = page.split("(se muestra solo ahora): ")[1].split("<")[0].strip()
    assert len(secret) >= 43
    assert secret not in cookies
    assert "messages" not in response.cookies


def test_deleting_a_consumer_leaves_its_audit_rows_as_they_were(api, consumer, admin_client):
    consumidor, headers = consumer
    api.post(URL, {}, format="json", **headers)
    row = Bitacora.objects.get()
    assert admin_client.get(f"/admin/sso/consumidorapi/{consumidor.pk}/delete/").status_code == 403
    ConsumidorAPI.objects.filter(pk=consumidor.pk).delete()
    row.refresh_from_db()
    assert row.consumidor_id == consumidor.pk


@pytest.mark.parametrize("dias", ["0", "-1"])
def test_pruning_refuses_to_empty_the_audit_log(dias):
    Bitacora.objects.create(endpoint="/x", metodo="GET", estado=200)
    with pytest.raises(CommandError):
        call_command("podar_bitacora", "--dias", dias)
    assert Bitacora.objects.count() == 1


@pytest.mark.parametrize("nombre", ["niño café", " pad ", "a b", "x;y"])
def test_consumer_names_must_fit_in_a_header(nombre):
    with pytest.raises(CommandError):
        call_command("consumidor", "crear", nombre, "--permisos", "usuarios")
    assert not ConsumidorAPI.objects.exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONSUMO_RATE", "10/x", "CONSUMO_RATE"),
        ("TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES"),
        ("ENCRYPTION_KEYS", "k1:not-base64!", "ENCRYPTION_KEYS"),
    ],
)
def test_bad_settings_fail_at_start_up(tmp_path, variable, value, message):
    values = {"SECRET_KEY": "x" * 50, "ENCRYPTION_KEYS": f"k1:{b64encode(bytes(32)).decode()}"}
    env = base_env(tmp_path, **{**values, variable: value})
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_a_copy_of_env_example_starts(tmp_path):
    from pathlib import Path

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    env_file = tmp_path / ".env"
    env_file.write_text(example + "\nDEBUG=1\n".replace("DEBUG=1", "DEBUG=1"))
    text = env_file.read_text().replace("DEBUG=0", "DEBUG=1")
    text = text.replace("VAR_DIR=./var", f"VAR_DIR={tmp_path / 'var'}")
    env_file.write_text(text)
    env = base_env(tmp_path / "var", ENV_FILE=str(env_file))
    del env["VAR_DIR"]
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from incidencias.celery import app; "
        "print(app.conf.broker_url, s.TRUSTED_PROXIES, s.CSRF_TRUSTED_ORIGINS)"
    )
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "filesystem://"
    assert "[] []" in result.stdout
