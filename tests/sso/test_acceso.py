"""POST /api/SSO/access and GET /api/SSO/refreshUserToken (seed 000)."""

import json
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from sso.dispositivos import dispositivo_registrar
from sso.models import Bitacora, Sistema, TokenUsuario, Usuario
from sso.tokens import token_emitir, token_revocar

ACCESS = "/api/SSO/access"
REFRESH = "/api/SSO/refreshUserToken"
UNAUTHORIZED = {"message": "Credenciales de consumo inválidas"}
PASSWORD = "Cyberf4231&459"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def headers(make_consumer):
    return make_consumer(nombre="producto", permisos=("sso",))[1]


@pytest.fixture
def dolores(db):
    return Sistema.objects.create(alias="dolores", nombre="Dolores")


@pytest.fixture
def oaraya(soporte, dolores):
    user = Usuario.objects.create_user(
        username="oaraya",
        email="oaraya@example.com",
        password=PASSWORD,
        nombre="Osmel Araya Ruiz",
        phone="+50684815739",
        departamento=soporte,
    )
    user.accesos_sistemas.add(dolores)
    return user


@pytest.fixture
def hasher_calls(monkeypatch):
    """How many times the password hasher checked a password (MD5 in tests)."""
    calls = []
    verify = MD5PasswordHasher.verify

    def counting_verify(self, password, encoded):
        calls.append("verify")
        return verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", counting_verify)
    return calls


def access(api, headers, ip="127.0.0.1", **body):
    payload = {"product": "dolores", "modo": "normal", **body}
    return api.post(
        ACCESS, json.dumps(payload), content_type="application/json", REMOTE_ADDR=ip, **headers
    )


def refresh(api, headers, token, query="", body=None):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is None:
        return api.get(f"{REFRESH}{query}", **headers, **auth)
    return api.generic(
        "GET", f"{REFRESH}{query}", json.dumps(body), "application/json", **headers, **auth
    )


def assert_refused(response, message="Credenciales inválidas."):
    assert response.status_code == 401
    body = response.json()
    assert body == {
        "data": {"authenticated": False},
        "status": "error",
        "message": message,
        "code": 401,
        "id_bitacora_log": body["id_bitacora_log"],
    }
    assert isinstance(body["id_bitacora_log"], int)


# --- modo normal -----------------------------------------------------------------------------


def test_it_signs_in_by_login_with_the_seed_shape(api, headers, oaraya):
    response = access(api, headers, user="oaraya", password=PASSWORD, id_bitacora_log="123456")
    assert response.status_code == 200
    body = response.json()
    token = body["data"]["token"]
    assert body == {
        "data": {
            "authenticated": True,
            "id": oaraya.pk,
            "code": "",
            "name": "Osmel Araya Ruiz",
            "email": "oaraya@example.com",
            "phone": "+50684815739",
            "token": token,
        },
        "status": "ok",
        "message": "Usuario logueado.",
        "code": 200,
        "id_bitacora_log": Bitacora.objects.get().pk,
    }
    ident, _, secret = token.partition("|")
    stored = TokenUsuario.objects.get(pk=int(ident))
    assert stored.usuario == oaraya and stored.sistema.alias == "dolores"
    assert secret not in stored.secreto_hash
    row = Bitacora.objects.get()
    assert row.id_padre == 123456 and row.usuario_id == oaraya.pk and row.estado == 200


def test_it_signs_in_by_email(api, headers, oaraya):
    response = access(api, headers, user="OARAYA@example.com", password=PASSWORD)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == oaraya.pk


def test_it_uses_usuario_when_user_is_absent(api, headers, oaraya):
    response = access(api, headers, usuario="oaraya@example.com", password=PASSWORD)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == oaraya.pk


def test_it_prefers_user_to_usuario(api, headers, oaraya):
    response = access(api, headers, user="nadie", usuario="oaraya@example.com", password=PASSWORD)
    assert_refused(response)


def test_it_falls_back_to_username_and_mobile(api, headers, oaraya):
    Usuario.objects.filter(pk=oaraya.pk).update(nombre="", phone="", movil="+50688887777")
    data = access(api, headers, user="oaraya", password=PASSWORD).json()["data"]
    assert data["name"] == "oaraya" and data["phone"] == "+50688887777"


def test_it_records_last_login_and_ip(api, headers, oaraya):
    access(api, headers, ip="203.0.113.9", user="oaraya", password=PASSWORD)
    oaraya.refresh_from_db()
    assert oaraya.last_login is not None
    assert oaraya.ultima_ip == "203.0.113.9"


def test_it_refuses_a_wrong_password(api, headers, oaraya, hasher_calls):
    assert_refused(access(api, headers, user="oaraya", password="wrong"))
    assert hasher_calls == ["verify"]
    oaraya.refresh_from_db()
    assert oaraya.last_login is None
    assert not TokenUsuario.objects.exists()


def test_it_refuses_an_unknown_user_at_the_cost_of_a_wrong_password(
    api, headers, oaraya, hasher_calls
):
    access(api, headers, user="oaraya", password="x")  # builds the dummy hash once
    hasher_calls.clear()
    assert_refused(access(api, headers, user="nadie", password=PASSWORD))
    assert hasher_calls == ["verify"]  # as many hasher runs as a wrong password


def test_it_refuses_an_inactive_user_like_a_wrong_password(api, headers, oaraya, hasher_calls):
    Usuario.objects.filter(pk=oaraya.pk).update(is_active=False)
    assert_refused(access(api, headers, user="oaraya", password=PASSWORD))
    assert hasher_calls == ["verify"]


def test_it_refuses_a_user_without_access_to_the_product(api, headers, oaraya):
    Sistema.objects.create(alias="otro", nombre="Otro")
    response = access(api, headers, product="otro", user="oaraya", password=PASSWORD)
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == "error" and body["code"] == 403 and body["data"] is None
    assert body["message"] == "El usuario no tiene acceso a este producto."
    assert not TokenUsuario.objects.exists()


def test_it_refuses_an_unknown_product_before_checking_credentials(
    api, headers, oaraya, hasher_calls
):
    response = access(api, headers, product="nada", user="oaraya", password=PASSWORD)
    assert response.status_code == 422
    assert response.json()["errors"] == {"product": ["Producto desconocido."]}
    assert hasher_calls == []


def test_it_asks_for_the_fields_each_mode_needs(api, headers, oaraya):
    response = access(api, headers, user="oaraya")
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"password"}
    response = access(api, headers, modo="pin", password=PASSWORD)
    assert set(response.json()["errors"]) == {"user", "pin", "id_device"}


def test_it_needs_the_sso_permission(api, make_consumer, oaraya):
    _, other = make_consumer(nombre="lector", permisos=("usuarios",))
    assert access(api, other, user="oaraya", password=PASSWORD).status_code == 403


def test_it_answers_the_consumer_401_without_headers(api, oaraya):
    response = access(api, {}, user="oaraya", password=PASSWORD)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


# --- modo pin --------------------------------------------------------------------------------


@pytest.fixture
def movil(oaraya):
    return dispositivo_registrar(usuario=oaraya, nombre="Teléfono", pin="4321")


def test_it_signs_in_with_the_pin_of_a_device(api, headers, oaraya, movil):
    response = access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=movil.pk)
    assert response.status_code == 200
    token = response.json()["data"]["token"]
    assert TokenUsuario.objects.get(pk=int(token.split("|")[0])).dispositivo == movil


def test_it_refuses_a_wrong_pin_and_counts_it_on_the_device(api, headers, oaraya, movil):
    assert_refused(access(api, headers, modo="pin", user="oaraya", pin="0000", id_device=movil.pk))
    movil.refresh_from_db()
    assert movil.fallos_pin == 1


@override_settings(PIN_MAX_FALLOS=2, SSO_MAX_FALLOS=100)
def test_it_refuses_a_locked_device_even_with_the_right_pin(api, headers, oaraya, movil):
    for _ in range(2):
        access(api, headers, modo="pin", user="oaraya", pin="0000", id_device=movil.pk)
    movil.refresh_from_db()
    assert movil.bloqueado is not None
    assert_refused(access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=movil.pk))


def test_it_refuses_the_device_of_another_user(api, headers, oaraya, dolores, hasher_calls):
    otro = Usuario.objects.create_user(username="otro", email="otro@example.com", password="x")
    otro.accesos_sistemas.add(dolores)
    ajeno = dispositivo_registrar(usuario=otro, nombre="Ajeno", pin="4321")
    access(api, headers, user="nadie", password="x")  # builds the dummy hash once
    hasher_calls.clear()
    assert_refused(access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=ajeno.pk))
    assert hasher_calls == ["verify"]
    ajeno.refresh_from_db()
    assert ajeno.fallos_pin == 0  # an outsider cannot lock someone else's device


def test_it_refuses_a_pin_for_an_inactive_user(api, headers, oaraya, movil):
    Usuario.objects.filter(pk=oaraya.pk).update(is_active=False)
    assert_refused(access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=movil.pk))


# --- lockout ---------------------------------------------------------------------------------


def test_it_locks_an_account_out_after_five_failures_before_hashing(
    api, headers, oaraya, hasher_calls
):
    for number in range(5):
        ip = f"198.51.100.{number}"  # different IPs: the account counter alone locks
        assert_refused(access(api, headers, ip=ip, user="oaraya", password="wrong"))
    hasher_calls.clear()
    response = access(
        api, headers, ip="198.51.100.99", user="oaraya@example.com", password=PASSWORD
    )
    assert response.status_code == 429
    body = response.json()
    assert body["status"] == "error" and body["code"] == 429 and body["data"] is None
    assert int(response["Retry-After"]) > 0
    assert hasher_calls == []  # refused before the hasher ran
    assert not TokenUsuario.objects.exists()


def test_it_locks_out_unknown_names_the_same_way(api, headers, oaraya):
    for _ in range(5):
        assert_refused(access(api, headers, ip="198.51.100.1", user="nadie", password="x"))
    response = access(api, headers, ip="198.51.100.2", user="nadie", password="x")
    assert response.status_code == 429


def test_it_locks_out_an_ip_across_accounts(api, headers, oaraya):
    for number in range(5):
        assert_refused(access(api, headers, ip="203.0.113.5", user=f"nadie{number}", password="x"))
    assert access(api, headers, ip="203.0.113.5", user="oaraya", password=PASSWORD).status_code == (
        429
    )
    assert access(api, headers, ip="203.0.113.6", user="oaraya", password=PASSWORD).status_code == (
        200
    )


def test_it_resets_the_account_counter_on_success(api, headers, oaraya):
    for number in range(4):
        access(api, headers, ip=f"198.51.100.{number}", user="oaraya", password="wrong")
    assert access(api, headers, user="oaraya", password=PASSWORD).status_code == 200
    for number in range(4):
        access(api, headers, ip=f"198.51.100.{number}", user="oaraya", password="wrong")
    assert access(api, headers, user="oaraya", password=PASSWORD).status_code == 200


def test_it_counts_pin_failures_towards_the_lockout(api, headers, oaraya, movil):
    with override_settings(PIN_MAX_FALLOS=100):
        for _ in range(5):
            access(api, headers, modo="pin", user="oaraya", pin="0000", id_device=movil.pk)
        response = access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=movil.pk)
    assert response.status_code == 429


def test_it_lets_the_account_in_again_once_the_window_passes(api, headers, oaraya):
    # A window of 1 s (the setting is in minutes): the cache expires the counters, in locmem as
    # in Redis, so no clock needs faking.
    with override_settings(SSO_VENTANA_MINUTOS=1 / 60):
        for _ in range(5):
            access(api, headers, user="oaraya", password="wrong")
        assert access(api, headers, user="oaraya", password=PASSWORD).status_code == 429
        time.sleep(1.2)
        assert access(api, headers, user="oaraya", password=PASSWORD).status_code == 200


# --- audit -----------------------------------------------------------------------------------


def test_it_keeps_no_password_pin_or_token_in_the_audit_log(api, headers, oaraya, movil):
    access(api, headers, user="oaraya", password="wrong-Secret-1")
    ok = access(api, headers, user="oaraya", password=PASSWORD, pin="9876")
    token = ok.json()["data"]["token"]
    access(api, headers, modo="pin", user="oaraya", pin="4321", id_device=movil.pk)
    refresh(api, headers, token, body={"product": "dolores"})
    rows = list(Bitacora.objects.all())
    assert len(rows) == 4  # every attempt, failed ones included
    dump = json.dumps([row.resumen for row in rows])
    for secret in ("wrong-Secret-1", PASSWORD, "9876", "4321", token, token.split("|")[1]):
        assert secret not in dump


# --- refreshUserToken ------------------------------------------------------------------------


@pytest.fixture
def token(oaraya, dolores):
    return token_emitir(usuario=oaraya, sistema=dolores)[1]


def test_it_refreshes_a_token_with_the_seed_shape(api, headers, oaraya, token):
    response = refresh(api, headers, token, query="?product=dolores&id_bitacora_log=77")
    assert response.status_code == 200
    body = response.json()
    nuevo = body["data"]["token"]
    assert body == {
        "data": {
            "id": oaraya.pk,
            "code": "",
            "name": "Osmel Araya Ruiz",
            "email": "oaraya@example.com",
            "phone": "+50684815739",
            "token": nuevo,
        },
        "status": "ok",
        "message": "Usuario logueado.",
        "code": 200,
        "id_bitacora_log": Bitacora.objects.get().pk,
    }
    assert nuevo != token
    assert Bitacora.objects.get().id_padre == 77
    assert refresh(api, headers, nuevo).status_code == 200  # the new one works
    assert_refused(refresh(api, headers, token), "Token de usuario inválido o vencido.")


def test_it_reads_the_parameters_from_a_json_body_on_get(api, headers, oaraya, token):
    response = refresh(api, headers, token, body={"product": "dolores", "id_bitacora_log": "55"})
    assert response.status_code == 200
    assert Bitacora.objects.get().id_padre == 55


def test_it_refuses_a_refresh_for_another_product(api, headers, oaraya, token):
    Sistema.objects.create(alias="otro", nombre="Otro")
    assert refresh(api, headers, token, query="?product=otro").status_code == 403
    assert refresh(api, headers, token, query="?product=nada").status_code == 422


def test_it_refuses_a_refresh_once_access_to_the_product_is_withdrawn(
    api, headers, oaraya, dolores, token
):
    oaraya.accesos_sistemas.remove(dolores)
    assert refresh(api, headers, token).status_code == 403


def test_it_refuses_a_revoked_token(api, headers, oaraya, token):
    token_revocar(token=TokenUsuario.objects.get(pk=int(token.split("|")[0])))
    assert_refused(refresh(api, headers, token), "Token de usuario inválido o vencido.")


def test_it_refuses_an_expired_token(api, headers, oaraya, token):
    TokenUsuario.objects.update(expira="2000-01-01T00:00:00Z")
    assert_refused(refresh(api, headers, token), "Token de usuario inválido o vencido.")


@pytest.mark.parametrize("raw", ["", "abc", "1|", "|x", "x|y", "eyJ.a.b", "1|wrong"])
def test_it_refuses_a_malformed_or_wrong_bearer(api, headers, oaraya, token, raw):
    assert_refused(refresh(api, headers, raw), "Token de usuario inválido o vencido.")


def test_it_answers_the_consumer_401_to_a_refresh_without_headers(api, oaraya, token):
    response = refresh(api, {}, token)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert TokenUsuario.objects.get().revocado is None  # nothing happened


def test_the_ip_limit_can_be_set_apart_from_the_account_limit(api, headers, oaraya):
    with override_settings(SSO_MAX_FALLOS_IP=8):
        for number in range(7):
            access(api, headers, ip="203.0.113.9", user=f"nadie{number}", password="x")
        assert (
            access(api, headers, ip="203.0.113.9", user="oaraya", password=PASSWORD).status_code
            == 200
        )
        for number in range(8):
            access(api, headers, ip="203.0.113.9", user=f"otro{number}", password="x")
        assert (
            access(api, headers, ip="203.0.113.9", user="oaraya", password=PASSWORD).status_code
            == 429
        )


# --- Cost ------------------------------------------------------------------------------------


def statements(queries) -> list[str]:
    """The statements of a request, without the test transaction's savepoints."""
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"].upper()]


@pytest.mark.parametrize("ip", ["127.0.0.1", "198.51.100.77"])
def test_a_sign_in_runs_four_statements(api, headers, oaraya, ip):
    """The product, the user with their access to it, the sign-in with its token, the audit row."""
    access(api, headers, user="oaraya", password=PASSWORD)  # the consumer, now cached
    with CaptureQueriesContext(connection) as queries:
        response = access(api, headers, ip=ip, user="oaraya", password=PASSWORD)

    assert response.status_code == 200
    assert len(statements(queries)) == (4 if connection.vendor == "postgresql" else 5)


def test_a_refresh_runs_three_statements(api, headers, oaraya):
    """The token with its user and product, the renewal, the audit row."""
    token = access(api, headers, user="oaraya", password=PASSWORD).json()["data"]["token"]
    for _ in range(2):  # the same for every renewal
        with CaptureQueriesContext(connection) as queries:
            response = refresh(api, headers, token, query="?product=dolores")
        assert response.status_code == 200
        token = response.json()["data"]["token"]
        assert len(statements(queries)) == (3 if connection.vendor == "postgresql" else 4)
