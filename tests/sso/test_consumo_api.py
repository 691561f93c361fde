"""Envelope A, consumer authentication and the audit log, through UsuarioInterno/get."""

import json
from datetime import timedelta

import pytest
from django.test import override_settings

from sso import consumidores
from sso.models import Bitacora, ConsumidorAPI, Rol, Sistema, Usuario

URL = "/api/UsuarioInterno/get"
UNAUTHORIZED = {"message": "Credenciales de consumo inválidas"}

pytestmark = pytest.mark.django_db


def post(api, headers, body=None, **extra):
    payload = json.dumps(body if body is not None else {})
    return api.post(URL, payload, content_type="application/json", **headers, **extra)


@pytest.fixture
def jmora(soporte):
    rol = Rol.objects.create(nombre="desarrollo")
    user = Usuario.objects.create_user(
        username="jmora",
        email="jmora@example.com",
        password="irrelevant",
        nombre="Julia Mora",
        cedula="4-0250-0828",
        departamento=soporte,
        rol=rol,
        ext="151",
        movil="+506.83576159",
        acceso_ticket=True,
        jefe=True,
        id_synology=120,
    )
    user.accesos_sistemas.set(
        [
            Sistema.objects.create(alias="sms", nombre="SMS", dominio="sms.example.com"),
            Sistema.objects.create(alias="fp", nombre="FP", dominio="factura.example.com"),
        ]
    )
    return user


def test_it_returns_the_seed_user_dict(api, consumer, jmora):
    _, headers = consumer
    response = post(api, headers, {"user": "jmora"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["code"] == 200
    assert body["message"] == "Obtenidos 1 registros de usuarios."
    assert body["data"] == [
        {
            "id_usuario": jmora.pk,
            "login": "jmora",
            "nombre": "Julia Mora",
            "cedula": "4-0250-0828",
            "tipo_usuario": "operador",
            "status": "ACTIVO",
            "accesos": "",
            "usuario": "jmora",
            "correo": "jmora@example.com",
            "ext": "151",
            "acceso_ticket": "S",
            "fk_id_departamento": jmora.departamento_id,
            "fk_id_rol": jmora.rol_id,
            "rol": "desarrollo",
            "jefe": 1,
            "movil": "+506.83576159",
            "ultimo_acceso": None,
            "ip_address": None,
            "accesos_sistemas": "factura.example.com,sms.example.com",
            "id_synology": 120,
        }
    ]
    assert body["id_bitacora_log"] == Bitacora.objects.get().pk


def test_it_filters_by_email_and_department(api, consumer, jmora, agente, redes):
    _, headers = consumer
    assert len(post(api, headers, {}).json()["data"]) == 2
    assert [
        u["login"] for u in post(api, headers, {"email": "JMORA@example.com"}).json()["data"]
    ] == ["jmora"]
    body = post(api, headers, {"departamento": redes.pk}).json()
    assert body["data"] == []
    assert body["message"] == "Obtenidos 0 registros de usuarios."


def statements(captured) -> list[str]:
    """The SQL a request ran, without the savepoints the test's own transaction adds."""
    return [
        q["sql"] for q in captured if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_it_uses_one_query_for_any_number_of_users(api, consumer, jmora, agente, soporte):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, headers = consumer
    post(api, headers, {})  # warm the consumer cache
    for index in range(5):
        Usuario.objects.create_user(username=f"extra{index}", departamento=soporte)
    # one SELECT of the users (systems aggregated in a subquery) + one INSERT of the audit row
    with CaptureQueriesContext(connection) as ctx:
        response = post(api, headers, {})
    assert len(statements(ctx.captured_queries)) == 2, ctx.captured_queries
    assert len(response.json()["data"]) == 7


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_USER_CONSUMO": "lector"},
        {"HTTP_X_USER_SECRET": "whatever"},
        {"HTTP_X_USER_CONSUMO": "lector", "HTTP_X_USER_SECRET": "wrong"},
        {"HTTP_X_USER_CONSUMO": "nadie", "HTTP_X_USER_SECRET": "wrong"},
    ],
)
def test_it_refuses_missing_or_wrong_credentials_with_the_exact_body(api, consumer, headers):
    response = post(api, headers, {"user": "x"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    row = Bitacora.objects.get()
    assert row.estado == 401
    assert row.consumidor is None


def test_it_refuses_a_revoked_consumer(api, consumer):
    consumidor, headers = consumer
    assert post(api, headers).status_code == 200
    consumidores.consumidor_revocar(consumidor=consumidor)
    assert post(api, headers).status_code == 401


def test_a_rotated_secret_replaces_the_old_one(api, consumer):
    consumidor, headers = consumer
    new_secret = consumidores.consumidor_rotar(consumidor=consumidor, solapamiento=timedelta(0))
    assert post(api, headers).status_code == 401
    assert post(api, {**headers, "HTTP_X_USER_SECRET": new_secret}).status_code == 200


def test_a_change_elsewhere_reaches_this_process_within_the_cache_time(api, consumer):
    consumidor, headers = consumer
    assert post(api, headers).status_code == 200
    # Another process revokes it: the row changes, this process's cache does not hear of it.
    ConsumidorAPI.objects.filter(pk=consumidor.pk).update(activo=False)
    with override_settings(CONSUMIDOR_CACHE_SECONDS=0):
        assert post(api, headers).status_code == 401


def test_a_known_consumer_costs_no_query(consumer, django_assert_num_queries):
    _, headers = consumer
    secret = headers["HTTP_X_USER_SECRET"]
    assert consumidores.consumidor_autenticar(nombre="lector", secreto=secret)
    with django_assert_num_queries(0):
        for _ in range(10):
            assert consumidores.consumidor_autenticar(nombre="lector", secreto=secret)


def test_the_secret_is_stored_only_as_a_keyed_hash(consumer):
    consumidor, headers = consumer
    secret = headers["HTTP_X_USER_SECRET"]
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    consumidor.refresh_from_db()
    assert secret not in consumidor.secreto_hash
    assert consumidor.secreto_hash == consumidores.hash_secret(secret)
    with override_settings(CONSUMIDOR_HMAC_KEY="another-key"):
        assert consumidores.hash_secret(secret) != consumidor.secreto_hash


def test_a_consumer_without_the_permission_gets_403(api, make_consumer):
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])
    response = post(api, headers, {})
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == "error"
    assert body["code"] == 403
    assert body["data"] is None
    assert body["id_bitacora_log"] == Bitacora.objects.get().pk


def test_malformed_json_is_400(api, consumer):
    _, headers = consumer
    response = api.post(URL, '{"user": ', content_type="application/json", **headers)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["code"], body["message"]) == ("error", 400, "JSON mal formado.")
    assert isinstance(body["id_bitacora_log"], int)


@pytest.mark.parametrize("raw", [b"NaN", b"\xff\xfe{}", b"[1, 2"])
def test_other_unparseable_bodies_are_400(api, consumer, raw):
    _, headers = consumer
    response = api.generic("POST", URL, raw, content_type="application/json", **headers)
    assert response.status_code == 400


def test_validation_errors_are_422_with_field_errors(api, consumer):
    _, headers = consumer
    response = post(api, headers, {"email": "not-an-email", "departamento": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Datos inválidos."
    assert set(body["errors"]) == {"email", "departamento"}
    assert all(isinstance(msg, str) for msgs in body["errors"].values() for msg in msgs)


def test_a_json_list_is_422_not_500(api, consumer):
    _, headers = consumer
    response = api.post(URL, "[]", content_type="application/json", **headers)
    assert response.status_code == 422


def test_a_wrong_content_type_is_415(api, consumer):
    _, headers = consumer
    response = api.post(URL, "user=jmora", content_type="text/plain", **headers)
    assert response.status_code == 415
    assert response.json()["code"] == 415


@override_settings(API_MAX_BODY_BYTES=1000)
def test_an_oversized_body_is_413(api, consumer):
    _, headers = consumer
    response = post(api, headers, {"user": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["code"] == 413
    assert Bitacora.objects.get().estado == 413


def test_a_wrong_method_is_405(api, consumer):
    _, headers = consumer
    response = api.get(URL, **headers)
    assert response.status_code == 405
    assert response.json()["code"] == 405


def test_an_unknown_api_path_is_404_in_envelope_a(api):
    response = api.post("/api/UsuarioInterno/nada", {}, format="json")
    assert response.status_code == 404
    body = response.json()
    assert (body["status"], body["code"], body["data"]) == ("error", 404, None)
    assert body["id_bitacora_log"] == Bitacora.objects.get(estado=404).pk


def test_paths_are_case_sensitive(api, consumer):
    _, headers = consumer
    response = api.post("/api/usuariointerno/get", {}, format="json", **headers)
    assert response.status_code == 404


def test_an_unexpected_error_is_a_500_without_internals(api, consumer, monkeypatch):
    _, headers = consumer

    def boom(**kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr("sso.api.usuarios.usuario_interno_rows", boom)
    response = post(api, headers, {})
    assert response.status_code == 500
    body = response.json()
    assert body["message"] == "Error interno del servidor."
    assert "hunter2" not in response.content.decode()
    assert Bitacora.objects.get().estado == 500


def test_the_audit_row_records_the_call_without_secrets(api, consumer, jmora):
    consumidor, headers = consumer
    response = post(
        api,
        headers,
        {"user": "jmora", "id_bitacora_log": "123456", "password": "hunter2", "token": "t0k"},
        REMOTE_ADDR="203.0.113.9",
    )
    row = Bitacora.objects.get(pk=response.json()["id_bitacora_log"])
    assert row.consumidor_id == consumidor.pk
    assert (row.endpoint, row.metodo, row.estado) == (URL, "POST", 200)
    assert row.ip == "203.0.113.9"
    assert row.id_padre == 123456
    assert row.duracion_ms > 0
    assert row.resumen["body"]["user"] == "jmora"
    stored = json.dumps(row.resumen)
    for secret in ("hunter2", "t0k", headers["HTTP_X_USER_SECRET"]):
        assert secret not in stored


def test_a_failed_call_is_audited_with_the_name_tried(api, consumer):
    post(api, {"HTTP_X_USER_CONSUMO": "intruso", "HTTP_X_USER_SECRET": "guess"}, {"pin": "1234"})
    row = Bitacora.objects.get()
    assert row.estado == 401
    assert row.resumen["consumidor"] == "intruso"
    assert "guess" not in json.dumps(row.resumen)
    assert "1234" not in json.dumps(row.resumen)


def test_client_ip_comes_from_a_trusted_proxy_only(api, consumer):
    _, headers = consumer
    spoof = {"HTTP_X_FORWARDED_FOR": "198.51.100.7", "REMOTE_ADDR": "203.0.113.9"}
    post(api, headers, {}, **spoof)
    assert Bitacora.objects.latest("id").ip == "203.0.113.9"
    with override_settings(TRUSTED_PROXIES=["203.0.113.0/24"]):
        post(api, headers, {}, **spoof)
    assert Bitacora.objects.latest("id").ip == "198.51.100.7"


def test_api_messages_stay_spanish_whatever_the_client_language(api, consumer):
    _, headers = consumer
    response = post(api, headers, {"email": "x"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["message"] == "Datos inválidos."
    assert response.json()["errors"]["email"] != ["Enter a valid email address."]


def test_a_consumer_over_its_rate_gets_429(api, consumer, make_consumer):
    _, headers = consumer
    _, other = make_consumer("otro", permisos=["usuarios"])
    with override_settings(CONSUMO_RATE="2/min"):
        assert post(api, headers).status_code == 200
        assert post(api, headers).status_code == 200
        response = post(api, headers)
        assert response.status_code == 429
        assert response.json()["code"] == 429
        assert int(response["Retry-After"]) > 0
        assert Bitacora.objects.latest("id").estado == 429
        # the limit is per consumer
        assert post(api, other).status_code == 200


def test_the_documented_shape_is_the_one_answered(api, consumer, jmora):
    from sso.api.usuarios import UsuarioInternoGetView

    _, headers = consumer
    answered = post(api, headers, {"user": "jmora"}).json()["data"][0]
    assert list(answered) == list(UsuarioInternoGetView.OutputSerializer().fields)


def test_last_access_and_ip_are_reported(api, consumer, jmora):
    from datetime import UTC, datetime

    Usuario.objects.filter(pk=jmora.pk).update(
        last_login=datetime(2026, 3, 1, 18, 30, tzinfo=UTC), ultima_ip="192.0.2.4"
    )
    _, headers = consumer
    user = post(api, headers, {"user": "jmora"}).json()["data"][0]
    assert user["ultimo_acceso"] == "2026-03-01T12:30:00-06:00"
    assert user["ip_address"] == "192.0.2.4"
