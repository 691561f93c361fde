"""POST /v2/auth/gettoken (seed 001) and the verification of its JWTs."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.hashers import MD5PasswordHasher, make_password
from django.core.cache import cache
from django.utils.http import urlsafe_base64_encode
from rest_framework import exceptions

from sso.acceso import intentos_clave_cuenta
from sso.jwt import clave_firma, jwk_publica, jwt_autenticar, jwt_emitir, kid_de
from sso.models import Bitacora, OperadorVirtual, Sistema, Usuario
from sso.recuperacion import GeneradorTokenReset, password_restablecer

GETTOKEN = "/v2/auth/gettoken"
PASSWORD = "Cyberf4231&459"
NOW = datetime(2023, 5, 26, 2, 44, 48, tzinfo=UTC)
NO_MATCH = {
    "IsValid": False,
    "Warnings": [],
    "Errors": [
        {
            "Field": None,
            "Code": "IdentificationDoesNotMatch",
            "Description": None,
            "ExplanationValues": [],
        }
    ],
    "ResultData": None,
    "ResultCode": 400,
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def acme(db):
    return OperadorVirtual.objects.create(alias="acme", nombre="ACME Facturación")


@pytest.fixture
def integracion(acme):
    return Usuario.objects.create_user(
        username="integracion",
        email="integracion@example.com",
        password=PASSWORD,
        nombre="Kit Integración",
        operador_virtual=acme,
    )


@pytest.fixture
def hasher_calls(monkeypatch):
    calls = []
    verify = MD5PasswordHasher.verify

    def counting_verify(self, password, encoded):
        calls.append("verify")
        return verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", counting_verify)
    return calls


def gettoken(api, ip="127.0.0.1", **body):
    payload = {
        "username": "integracion@example.com",
        "password": PASSWORD,
        "virtual_operator": "acme",
        **body,
    }
    return api.post(GETTOKEN, json.dumps(payload), content_type="application/json", REMOTE_ADDR=ip)


def verify_with_jwks(token: str) -> dict:
    """What another system does: pick the JWKS key by `kid`, verify RS256 with PyJWT."""
    jwks = {"keys": [jwk_publica(clave_firma().publica)]}
    kid = pyjwt.get_unverified_header(token)["kid"]
    (jwk,) = [key for key in jwks["keys"] if key["kid"] == kid]
    return pyjwt.decode(
        token,
        pyjwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience="http://127.0.0.1:8000/api",
        issuer="http://127.0.0.1:8000",
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def refused(raw: str) -> str:
    with pytest.raises(exceptions.AuthenticationFailed) as caught:
        jwt_autenticar(raw)
    return str(caught.value.detail)


# --- kid ---------------------------------------------------------------------------------------


def test_it_computes_the_rfc_7638_thumbprint_of_the_rfcs_own_example():
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    modulus = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big")
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    assert kid_de(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_it_gives_the_same_kid_for_a_key_its_public_half_and_their_pems(settings):
    privada = clave_firma().privada
    publica_pem = privada.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kids = {
        kid_de(privada),
        kid_de(privada.public_key()),
        kid_de(publica_pem),
        kid_de(settings.OIDC_RSA_PRIVATE_KEY),
    }
    assert kids == {clave_firma().kid}
    assert jwk_publica(publica_pem)["kid"] == clave_firma().kid


# --- POST /v2/auth/gettoken --------------------------------------------------------------------


def test_it_answers_the_seeds_request_with_the_seeds_envelope(api, integracion):
    with time_machine.travel(NOW, tick=False):
        response = gettoken(api)
    assert response.status_code == 200
    body = response.json()
    data = body.pop("ResultData")
    assert body == {"IsValid": True, "Warnings": [], "Errors": [], "ResultCode": 200}
    assert set(data) == {"access_token", "expires", "token_type", "virtual_operator_alias"}
    assert data["token_type"] == "bearer"
    assert data["virtual_operator_alias"] == "acme"
    assert data["expires"] == "2023-05-26T04:44:48.000000Z"  # two hours, ISO 8601 in UTC
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        claims = verify_with_jwks(data["access_token"])
    assert claims["sub"] == str(integracion.pk)
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["virtualoperator"] == "acme"
    assert claims["unique_name"] == "integracion@example.com"
    header = pyjwt.get_unverified_header(data["access_token"])
    assert header == {"alg": "RS256", "kid": clave_firma().kid, "typ": "JWT"}


def test_a_user_without_operator_belongs_to_the_default_one(api, integracion, settings):
    settings.DEFAULT_VIRTUAL_OPERATOR = "principal"
    integracion.operador_virtual = None
    integracion.save()
    assert gettoken(api, virtual_operator="acme").json() == NO_MATCH
    response = gettoken(api, virtual_operator="principal")
    assert response.json()["ResultData"]["virtual_operator_alias"] == "principal"


def test_the_operator_alias_is_not_case_sensitive(api, integracion):
    response = gettoken(api, virtual_operator="ACME")
    assert response.json()["ResultData"]["virtual_operator_alias"] == "acme"


def test_the_username_may_be_the_login_too(api, integracion):
    assert gettoken(api, username="integracion").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"password": "wrong"},
        {"username": "nadie@example.com"},
        {"virtual_operator": "otro"},
    ],
    ids=["wrong password", "unknown user", "another operator"],
)
def test_bad_credentials_do_not_match_with_the_seeds_400(api, integracion, acme, body):
    OperadorVirtual.objects.create(alias="otro", nombre="Otro")
    response = gettoken(api, **body)
    assert response.status_code == 400
    assert response.json() == NO_MATCH


def test_an_inactive_user_or_operator_does_not_match(api, integracion, acme):
    integracion.is_active = False
    integracion.save()
    assert gettoken(api).json() == NO_MATCH
    integracion.is_active = True
    integracion.save()
    acme.activo = False
    acme.save()
    assert gettoken(api).json() == NO_MATCH


def test_an_unknown_user_costs_the_hashing_a_wrong_password_costs(api, integracion, hasher_calls):
    gettoken(api, password="wrong")
    wrong_password = len(hasher_calls)
    gettoken(api, username="nadie@example.com")
    assert wrong_password == 1
    assert len(hasher_calls) == 2


def test_failures_lock_the_account_out_with_429_before_hashing(
    api, integracion, settings, hasher_calls
):
    settings.SSO_MAX_FALLOS = 3
    settings.SSO_MAX_FALLOS_IP = 100
    for _ in range(3):
        assert gettoken(api, password="wrong").status_code == 400
    calls = len(hasher_calls)
    response = gettoken(api)  # the right password, too late
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json() == {
        "IsValid": False,
        "Warnings": [],
        "Errors": [
            {
                "Field": None,
                "Code": "TooManyRequests",
                "Description": None,
                "ExplanationValues": [],
            }
        ],
        "ResultData": None,
        "ResultCode": 429,
    }
    assert len(hasher_calls) == calls
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=16)):
        assert gettoken(api).status_code == 200


def test_a_wrong_operator_counts_on_the_same_counters_as_sso_access(api, integracion, settings):
    settings.SSO_MAX_FALLOS = 2
    gettoken(api, virtual_operator="otro")
    gettoken(api, virtual_operator="otro")
    clave = intentos_clave_cuenta(identificador="integracion", usuario=integracion)
    assert cache.get(clave) == 2
    assert gettoken(api).status_code == 429


def test_a_success_clears_the_accounts_failures(api, integracion):
    gettoken(api, password="wrong")
    assert gettoken(api).status_code == 200
    assert cache.get(intentos_clave_cuenta(identificador="x", usuario=integracion)) is None


@pytest.mark.parametrize(
    ("content", "content_type", "code"),
    [
        ('{"username": ', "application/json", "InvalidRequest"),
        ("[1, 2", "application/json", "InvalidRequest"),
        ("username=a&password=b", "application/x-www-form-urlencoded", "UnsupportedMediaType"),
        ("hola", "text/plain", "UnsupportedMediaType"),
    ],
)
def test_a_malformed_request_is_400_in_envelope_b(api, content, content_type, code):
    response = api.post(GETTOKEN, content, content_type=content_type)
    assert response.status_code == 400
    body = response.json()
    assert body["IsValid"] is False
    assert body["ResultCode"] == 400
    assert body["ResultData"] is None
    assert [error["Code"] for error in body["Errors"]] == [code]


def test_missing_fields_are_400_naming_each_field(api, db):
    response = api.post(GETTOKEN, {"username": "a@example.com"}, format="json")
    assert response.status_code == 400
    errors = response.json()["Errors"]
    assert {error["Field"] for error in errors} == {"password", "virtual_operator"}
    assert {error["Code"] for error in errors} == {"InvalidValue"}
    assert all(error["Description"] for error in errors)


def test_a_body_too_large_is_413_in_envelope_b(api, db, settings):
    settings.API_MAX_BODY_BYTES = 200
    response = gettoken(api, password="x" * 500)
    assert response.status_code == 413
    assert response.json()["ResultCode"] == 413
    assert response.json()["Errors"][0]["Code"] == "RequestTooLarge"


def test_other_methods_and_unknown_paths_answer_in_envelope_b(api, db):
    response = api.get(GETTOKEN)
    assert response.status_code == 405
    assert response.json()["ResultCode"] == 405
    response = api.post("/v2/auth/otra", {}, format="json")
    assert response.status_code == 404
    assert response.json()["Errors"][0]["Code"] == "NotFound"
    assert Bitacora.objects.filter(endpoint="/v2/auth/otra", estado=404).exists()


def test_every_call_is_audited_without_the_password_or_the_token(api, integracion, caplog):
    caplog.set_level(logging.DEBUG)
    ok = gettoken(api)
    gettoken(api, password="otra-clave-secreta")
    token = ok.json()["ResultData"]["access_token"]
    filas = list(Bitacora.objects.filter(endpoint=GETTOKEN).order_by("id"))
    assert [(fila.estado, fila.usuario_id) for fila in filas] == [
        (200, integracion.pk),
        (400, None),
    ]
    assert filas[0].resumen["body"]["username"] == "integracion@example.com"
    assert filas[0].resumen["body"]["password"] == "********"
    everything = json.dumps([fila.resumen for fila in filas]) + caplog.text
    for secret in (PASSWORD, "otra-clave-secreta", token, token.split(".")[2]):
        assert secret not in everything
    assert "id_bitacora_log" not in ok.json()


# --- jwt_autenticar ------------------------------------------------------------------------------


@pytest.fixture
def token(integracion):
    with time_machine.travel(NOW, tick=False):
        token, _ = jwt_emitir(usuario=integracion, operador="acme")
    return token


@pytest.fixture
def at_now():
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False) as traveller:
        yield traveller


def test_a_fresh_token_names_its_user(integracion, token, at_now):
    assert jwt_autenticar(token) == integracion


def test_it_reads_the_tokens_user_in_one_query_with_every_field(integracion, token, at_now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        usuario = jwt_autenticar(token)

    assert len(queries.captured_queries) == 1
    integracion.refresh_from_db()
    assert usuario.pk == integracion.pk and usuario.email == integracion.email
    assert usuario.jwt_valido_desde == integracion.jwt_valido_desde
    assert usuario.date_joined == integracion.date_joined and usuario.date_joined.tzinfo


def test_an_expired_token_is_refused(integracion, token):
    with time_machine.travel(NOW + timedelta(hours=2, seconds=1), tick=False):
        assert refused(token) == "Token vencido."
    with time_machine.travel(NOW + timedelta(hours=2) - timedelta(seconds=1), tick=False):
        assert jwt_autenticar(token) == integracion


def test_a_tampered_payload_or_signature_is_refused(integracion, token, at_now):
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(integracion.pk + 1)
    otro_payload = b64(json.dumps(claims).encode())
    assert refused(f"{header}.{otro_payload}.{signature}") == "Token inválido."
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert refused(f"{header}.{payload}.{flipped}") == "Token inválido."
    assert refused(f"{header}.{payload}.") == "Token inválido."
    assert refused("no.es.jwt") == "Token inválido."


def test_alg_none_and_hs256_keyed_with_the_public_key_are_refused(integracion, token, at_now):
    claims = pyjwt.decode(token, options={"verify_signature": False})
    kid = clave_firma().kid
    assert refused(forge({"alg": "none", "typ": "JWT", "kid": kid}, claims)) == (
        "Algoritmo de firma no permitido."
    )
    public_pem = clave_firma().publica.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = forge(
        {"alg": "HS256", "typ": "JWT", "kid": kid},
        claims,
        lambda signing_input: hmac.new(public_pem, signing_input, hashlib.sha256).digest(),
    )
    assert refused(hs256) == "Algoritmo de firma no permitido."
    # Even with the header saying RS256, an HMAC is no RSA signature.
    rs_header_hmac = forge(
        {"alg": "RS256", "typ": "JWT", "kid": kid},
        claims,
        lambda signing_input: hmac.new(public_pem, signing_input, hashlib.sha256).digest(),
    )
    assert refused(rs_header_hmac) == "Token inválido."


def test_a_token_of_another_key_issuer_or_audience_is_refused(integracion, token, at_now):
    claims = pyjwt.decode(token, options={"verify_signature": False})
    otra = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = clave_firma().kid
    assert refused(pyjwt.encode(claims, otra, "RS256", headers={"kid": kid})) == ("Token inválido.")
    assert refused(pyjwt.encode(claims, otra, "RS256", headers={"kid": kid_de(otra)})) == (
        "Clave de firma desconocida."
    )
    assert refused(pyjwt.encode(claims, otra, "RS256")) == "Clave de firma desconocida."
    privada = clave_firma().privada
    for change in ({"iss": "https://otro.example.com"}, {"aud": "https://otro.example.com"}):
        forged = pyjwt.encode({**claims, **change}, privada, "RS256", headers={"kid": kid})
        assert refused(forged) == "Token inválido."
    sin_exp = {key: value for key, value in claims.items() if key != "exp"}
    assert refused(pyjwt.encode(sin_exp, privada, "RS256", headers={"kid": kid})) == (
        "Token inválido."
    )


def test_an_inactive_or_deleted_user_is_refused(integracion, token, at_now):
    Usuario.objects.filter(pk=integracion.pk).update(is_active=False)
    assert refused(token) == "Usuario inactivo o inexistente."
    Usuario.objects.filter(pk=integracion.pk).delete()
    assert refused(token) == "Usuario inactivo o inexistente."


def test_deactivating_a_user_revokes_their_tokens_for_good(integracion, token, at_now):
    at_now.shift(60)
    integracion.is_active = False
    integracion.save(update_fields=["is_active"])
    integracion.is_active = True
    integracion.save(update_fields=["is_active"])
    assert refused(token) == "Token revocado."


def test_a_password_change_revokes_older_tokens_only(integracion, token, at_now):
    at_now.shift(60)
    integracion.set_password("Otra-clave-larga-9")
    integracion.save()
    assert refused(token) == "Token revocado."
    nuevo, _ = jwt_emitir(usuario=integracion, operador="acme")
    assert jwt_autenticar(nuevo) == integracion


def test_a_password_reset_revokes_older_tokens(integracion, token, at_now):
    sistema = Sistema.objects.create(alias="portal", nombre="Portal")
    integracion.accesos_sistemas.add(sistema)
    at_now.shift(60)
    password_restablecer(
        sistema=sistema,
        uid=urlsafe_base64_encode(str(integracion.pk).encode()),
        token=GeneradorTokenReset(sistema=sistema).make_token(integracion),
        password="Otra-clave-larga-9",
        password_confirmation="Otra-clave-larga-9",
    )
    integracion.refresh_from_db()
    assert integracion.jwt_valido_desde == NOW + timedelta(minutes=2)
    assert refused(token) == "Token revocado."


def test_signing_in_again_does_not_revoke_tokens(integracion, token, at_now):
    at_now.shift(60)
    assert integracion.check_password(PASSWORD)
    integracion.last_login = NOW
    integracion.save()
    assert jwt_autenticar(token) == integracion


def test_a_hash_upgrade_at_sign_in_does_not_revoke_tokens(integracion, token, at_now):
    at_now.shift(60)
    Usuario.objects.filter(pk=integracion.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )
    integracion.refresh_from_db()
    assert integracion.check_password(PASSWORD)  # re-hashed with the preferred hasher
    integracion.refresh_from_db()
    assert integracion.password.startswith("md5$")
    assert jwt_autenticar(token) == integracion


def test_a_stale_copy_saving_other_fields_keeps_the_revocation(integracion, token, at_now):
    copia = Usuario.objects.get(pk=integracion.pk)
    at_now.shift(60)
    integracion.set_password("Otra-clave-larga-9")
    integracion.save(update_fields=["password"])
    copia.is_active = True
    copia.save(update_fields=["is_active", "nombre"])
    assert refused(token) == "Token revocado."


def test_verifying_a_token_costs_one_query(integracion, token, at_now, django_assert_num_queries):
    with django_assert_num_queries(1):
        jwt_autenticar(token)


# --- A Bearer endpoint ----------------------------------------------------------------------


def test_a_bearer_endpoint_takes_the_jwt_and_refuses_an_expired_one(api, integracion, token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        response = api.get("/api/user", **auth)
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == integracion.pk
    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        response = api.get("/api/user", **auth)
    assert response.status_code == 401
    assert response.json()["success"] is False  # the reason is jwt_autenticar's, tested above
    header, payload, signature = token.split(".")
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        tampered = api.get(
            "/api/user", HTTP_AUTHORIZATION=f"Bearer {header}.{payload}x.{signature}"
        )
    assert tampered.status_code == 401
