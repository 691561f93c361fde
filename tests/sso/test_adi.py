"""SSO/ADI: setToken, generateToken and Token (seed 000), and the pruning of old requests."""

import base64
import hashlib
import json
import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from sso import adi
from sso.models import Bitacora, Sistema, SolicitudADI
from sso.tasks import podar_solicitudes_adi_task

SET = "/api/SSO/ADI/setToken"
GENERATE = "/api/SSO/ADI/generateToken"
VALIDATE = "/api/SSO/ADI/Token"
INVALIDA = {"authenticated": False, "message": "Solicitud inválida o vencida."}

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers(make_consumer):
    return make_consumer("adi", permisos=["sso.adi"])[1]


def post(api, headers, url, body):
    return api.post(url, json.dumps(body), content_type="application/json", **headers)


def set_token(api, headers, sistema="factura", estado="activo", rotar="S"):
    body = {"sistema": sistema, "estado": estado, "update_token": rotar}
    return post(api, headers, SET, body)


def generate(api, headers, token, sistema="factura", username="jmora"):
    body = {"username": username, "email": f"{username}@example.com", "sistema": sistema}
    return post(api, headers, GENERATE, {**body, "token": token})


def validate(api, headers, wire):
    return post(api, headers, VALIDATE, {"token": wire})


@pytest.fixture
def adi_token(api, headers):
    return set_token(api, headers).json()["data"]["token_generado"]


@pytest.fixture
def wire(api, headers, adi_token):
    return generate(api, headers, adi_token).json()["data"]["base64_encoded"]


def assert_refused(response):
    assert response.status_code == 401
    body = response.json()
    assert body["data"] == INVALIDA
    assert body["status"] == "error"
    assert body["code"] == 401
    assert body["message"] == "Solicitud inválida o vencida."
    assert body["id_bitacora_log"] == Bitacora.objects.latest("id").pk


# --- setToken -------------------------------------------------------------------------------


def test_it_creates_a_system_with_a_token_shown_once(api, headers):
    response = set_token(api, headers, rotar="N")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["code"] == 200
    assert body["message"] == "Registro creado correctamente."
    data = body["data"]
    assert data["alias_sistema"] == "factura"
    assert data["message"] == "Registro creado correctamente."
    token = data["token_generado"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32
    sistema = Sistema.objects.get(alias="factura")
    assert sistema.activo is True
    assert sistema.adi_token_creado is not None
    # Stored only as its SHA-256.
    assert sistema.adi_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(list(Sistema.objects.values()), default=str)
    # Shown once: a later call without rotation does not repeat it.
    again = set_token(api, headers, rotar="N").json()
    assert again["data"]["token_generado"] is None
    assert token not in json.dumps(again)


def test_it_creates_an_inactive_system(api, headers):
    assert set_token(api, headers, estado="inactivo").status_code == 200
    assert Sistema.objects.get(alias="factura").activo is False


def test_it_rotates_the_token_and_the_old_one_stops_working(api, headers, adi_token):
    response = set_token(api, headers, rotar="S")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Token actualizado correctamente."
    nuevo = body["data"]["token_generado"]
    assert nuevo and nuevo != adi_token
    assert body["data"]["message"] == "Token actualizado correctamente."
    assert generate(api, headers, adi_token).status_code == 403
    assert generate(api, headers, nuevo).status_code == 200


def test_it_updates_the_state_without_rotating_on_n(api, headers, adi_token):
    hash_before = Sistema.objects.get(alias="factura").adi_token_hash
    response = set_token(api, headers, estado="inactivo", rotar="N")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Registro actualizado correctamente."
    assert body["data"] == {
        "alias_sistema": "factura",
        "message": "Registro actualizado correctamente.",
        "token_generado": None,
    }
    sistema = Sistema.objects.get(alias="factura")
    assert sistema.activo is False
    assert sistema.adi_token_hash == hash_before
    assert set_token(api, headers, estado="activo", rotar="N").status_code == 200
    assert generate(api, headers, adi_token).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sistema": "factura", "estado": "activo", "update_token": "X"},
        {"sistema": "factura", "estado": "borrado", "update_token": "S"},
        {"sistema": "no es un alias", "estado": "activo", "update_token": "S"},
        {"sistema": "a" * 61, "estado": "activo", "update_token": "S"},
    ],
)
def test_it_refuses_invalid_set_token_fields(api, headers, body):
    response = post(api, headers, SET, body)
    assert response.status_code == 422
    assert response.json()["status"] == "error"
    assert not Sistema.objects.exists()


# --- generateToken --------------------------------------------------------------------------


def test_it_generates_a_signed_single_use_request(api, headers, adi_token):
    before = timezone.now()
    response = generate(api, headers, adi_token)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Solicitud de acceso generada."
    assert body["data"]["message"] == "Solicitud de acceso generada."
    wire = body["data"]["base64_encoded"]
    canonical, _, signature = (
        base64.urlsafe_b64decode(wire + "=" * (-len(wire) % 4)).decode().rpartition(":")
    )
    payload = json.loads(canonical)
    assert signature
    assert payload["u"] == "jmora"
    assert payload["e"] == "jmora@example.com"
    assert payload["s"] == "factura"
    solicitud = SolicitudADI.objects.get()
    assert solicitud.nonce == payload["n"]
    assert solicitud.usado is None
    assert solicitud.username == "jmora"
    lifetime = solicitud.expira - before
    assert timedelta(minutes=4, seconds=59) < lifetime <= timedelta(minutes=5, seconds=5)
    assert abs(payload["exp"] - solicitud.expira.timestamp()) < 1


def test_it_gives_each_request_its_own_nonce(api, headers, adi_token):
    first = generate(api, headers, adi_token).json()["data"]["base64_encoded"]
    second = generate(api, headers, adi_token).json()["data"]["base64_encoded"]
    assert first != second
    assert SolicitudADI.objects.count() == 2


def test_it_refuses_a_wrong_system_token(api, headers, adi_token):
    response = generate(api, headers, adi_token + "x")
    assert response.status_code == 403
    body = response.json()
    assert body["message"] == "Sistema o token ADI inválido."
    assert body["data"] is None
    assert not SolicitudADI.objects.exists()


def test_it_refuses_an_inactive_system(api, headers, adi_token):
    set_token(api, headers, estado="inactivo", rotar="N")
    response = generate(api, headers, adi_token)
    assert response.status_code == 403
    assert response.json()["message"] == "Sistema o token ADI inválido."
    assert not SolicitudADI.objects.exists()


def test_it_refuses_an_unknown_system_with_the_same_answer(api, headers, adi_token):
    unknown = generate(api, headers, adi_token, sistema="otro")
    wrong = generate(api, headers, "x" * 43)
    assert unknown.status_code == wrong.status_code == 403
    assert unknown.json()["message"] == wrong.json()["message"]


def test_it_refuses_a_system_without_a_token(api, headers):
    Sistema.objects.create(alias="legado", nombre="Legado")
    response = generate(api, headers, "", sistema="legado")
    assert response.status_code == 422  # blank token field
    empty_hash = hashlib.sha256(b"").hexdigest()
    assert Sistema.objects.get(alias="legado").adi_token_hash != empty_hash
    assert generate(api, headers, "x", sistema="legado").status_code == 403


# --- Token ----------------------------------------------------------------------------------


def test_it_authenticates_a_request_once_then_refuses_the_replay(api, headers, wire):
    response = validate(api, headers, wire)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Usuario Autenticado."
    assert body["data"] == {
        "authenticated": True,
        "username": "jmora",
        "email": "jmora@example.com",
        "sistema": "factura",
        "message": "Usuario Autenticado.",
    }
    assert SolicitudADI.objects.get().usado is not None
    assert_refused(validate(api, headers, wire))


def test_it_accepts_the_request_with_its_padding(api, headers, wire):
    padded = wire + "=" * (-len(wire) % 4)
    assert validate(api, headers, padded).status_code == 200


def test_it_refuses_a_request_with_a_flipped_byte(api, headers, wire):
    raw = bytearray(base64.urlsafe_b64decode(wire + "=" * (-len(wire) % 4)))
    for index in (2, len(raw) // 2, len(raw) - 2):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        encoded = base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("=")
        assert_refused(validate(api, headers, encoded))
    assert SolicitudADI.objects.get().usado is None
    assert validate(api, headers, wire).status_code == 200


def test_it_refuses_a_request_for_another_user(api, headers, wire):
    raw = base64.urlsafe_b64decode(wire + "=" * (-len(wire) % 4)).decode()
    canonical, _, signature = raw.rpartition(":")
    payload = json.loads(canonical)
    payload["u"] = "admin"
    forged_json = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    forged = base64.urlsafe_b64encode(f"{forged_json}:{signature}".encode()).decode()
    assert_refused(validate(api, headers, forged))
    assert SolicitudADI.objects.get().usado is None


def test_it_refuses_a_request_signed_with_another_salt(api, headers, adi_token, monkeypatch):
    monkeypatch.setattr(adi, "SALT", "otra.cosa")
    foreign = generate(api, headers, adi_token).json()["data"]["base64_encoded"]
    monkeypatch.undo()
    assert_refused(validate(api, headers, foreign))


def test_it_refuses_an_expired_request(api, headers, adi_token):
    sistema = Sistema.objects.get(alias="factura")
    assert sistema.activo
    past = timezone.now() - timedelta(minutes=5, seconds=1)
    expired = adi.solicitud_adi_generar(
        alias="factura", token=adi_token, username="jmora", email="jmora@example.com", now=past
    )
    assert_refused(validate(api, headers, expired))
    assert SolicitudADI.objects.get().usado is None


def test_it_refuses_a_request_just_before_expiry_from_the_services_clock(adi_token):
    wire = adi.solicitud_adi_generar(alias="factura", token=adi_token, username="jmora")
    later = timezone.now() + adi.LIFETIME + timedelta(seconds=1)
    with pytest.raises(adi.SolicitudInvalida):
        adi.solicitud_adi_validar(wire=wire, now=later)
    assert adi.solicitud_adi_validar(wire=wire).username == "jmora"


def test_it_refuses_a_request_whose_system_was_deactivated(api, headers, wire):
    set_token(api, headers, estado="inactivo", rotar="N")
    assert_refused(validate(api, headers, wire))
    assert SolicitudADI.objects.get().usado is None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "no es base64!",
        "////",
        "a",
        "=====",
        _b64("hola"),
        _b64("no json:firma"),
        _b64('{"u":"x"}:firma'),
        _b64("\udcff".encode("utf-8", "surrogatepass").decode("latin-1")),
        base64.urlsafe_b64encode(b"\xff\xfe\x00:zz").decode(),
        "A" * adi.MAX_WIRE_LENGTH,
    ],
)
def test_it_refuses_garbage_as_an_invalid_request(api, headers, garbage):
    assert_refused(validate(api, headers, garbage))


def test_it_refuses_a_validly_signed_payload_of_the_wrong_shape(api, headers):
    signed = adi._signer().sign(json.dumps({"u": "x", "exp": 2**40}))
    assert_refused(validate(api, headers, _b64(signed)))
    signed = adi._signer().sign(json.dumps([1, 2]))
    assert_refused(validate(api, headers, _b64(signed)))


@pytest.mark.parametrize(
    "body", [{}, {"token": ""}, {"token": None}, {"token": "A" * (adi.MAX_WIRE_LENGTH + 1)}]
)
def test_it_refuses_a_missing_or_blank_token_field_as_invalid_data(api, headers, body):
    response = post(api, headers, VALIDATE, body)
    assert response.status_code == 422
    assert response.json()["status"] == "error"
    assert "token" in response.json()["errors"]


def test_it_answers_consumer_header_failures_with_the_exact_body(api, wire):
    response = validate(api, {"HTTP_X_USER_CONSUMO": "adi", "HTTP_X_USER_SECRET": "x"}, wire)
    assert response.status_code == 401
    assert response.json() == {"message": "Credenciales de consumo inválidas"}
    assert SolicitudADI.objects.get().usado is None


# --- Permission and audit -------------------------------------------------------------------


@pytest.mark.parametrize("url", [SET, GENERATE, VALIDATE])
def test_it_requires_the_sso_adi_permission(api, make_consumer, url):
    _, sso_only = make_consumer("sso-solo", permisos=["sso"])
    response = post(api, sso_only, url, {"token": "x"})
    assert response.status_code == 403
    assert response.json()["status"] == "error"
    assert not Sistema.objects.exists()


def test_it_keeps_tokens_and_requests_out_of_the_audit_log(api, headers):
    adi_token = set_token(api, headers).json()["data"]["token_generado"]
    wire = generate(api, headers, adi_token).json()["data"]["base64_encoded"]
    validate(api, headers, wire)
    validate(api, headers, wire)
    generate(api, headers, "incorrecto-" + adi_token)
    rows = list(Bitacora.objects.order_by("id").values())
    assert [row["estado"] for row in rows] == [200, 200, 200, 401, 403]
    dump = json.dumps(rows, default=str)
    assert adi_token not in dump
    assert wire not in dump
    assert wire[:40] not in dump


# --- Pruning --------------------------------------------------------------------------------


def test_it_prunes_requests_a_day_after_they_expired(adi_token):
    now = timezone.now()
    old = adi.solicitud_adi_generar(
        alias="factura", token=adi_token, username="viejo", now=now - timedelta(days=2)
    )
    adi.solicitud_adi_generar(alias="factura", token=adi_token, username="reciente")
    assert podar_solicitudes_adi_task() == 1
    assert list(SolicitudADI.objects.values_list("username", flat=True)) == ["reciente"]
    # Pruned or not, an old request stays refused.
    with pytest.raises(adi.SolicitudInvalida):
        adi.solicitud_adi_validar(wire=old)


def test_it_schedules_the_pruning():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["podar-solicitudes-adi"]
    assert entry["task"] == "sso.podar_solicitudes_adi"
    assert entry["schedule"] > 0


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_authenticates_exactly_one_of_ten_concurrent_validations(live_server, make_consumer):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite runs one writer at a time")
    _, headers = make_consumer("adi-carrera", permisos=["sso.adi"])
    http_headers = {"X-User-Consumo": headers["HTTP_X_USER_CONSUMO"],
                    "X-User-Secret": headers["HTTP_X_USER_SECRET"]}  # fmt: skip
    base = live_server.url
    created = requests.post(
        base + SET,
        json={"sistema": "factura", "estado": "activo", "update_token": "S"},
        headers=http_headers,
        timeout=60,
    )
    adi_token = created.json()["data"]["token_generado"]
    generated = requests.post(
        base + GENERATE,
        json={"username": "jmora", "email": "jmora@example.com", "sistema": "factura",
              "token": adi_token},
        headers=http_headers,
        timeout=60,
    )  # fmt: skip
    wire = generated.json()["data"]["base64_encoded"]
    answers, errors = [], []
    barrier = threading.Barrier(10)

    def check():
        try:
            barrier.wait(timeout=30)
            answers.append(
                requests.post(base + VALIDATE, json={"token": wire}, headers=http_headers,
                              timeout=60)
            )  # fmt: skip
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] + [401] * 9
    authenticated = [answer.json()["data"]["authenticated"] for answer in answers]
    assert authenticated.count(True) == 1
    assert authenticated.count(False) == 9


def test_it_refuses_an_over_long_email_as_invalid_data(api, headers, adi_token):
    body = {"username": "jmora", "sistema": "factura", "token": adi_token}
    response = post(api, headers, GENERATE, {**body, "email": "a" * 250 + "@example.com"})
    assert response.status_code == 422
    assert "email" in response.json()["errors"]
