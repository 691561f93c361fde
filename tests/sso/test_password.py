"""SSO/password/forgot and SSO/password/reset, against a real SMTP server (aiosmtpd)."""

import json
import logging
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import override_settings

from sso import recuperacion
from sso.models import Bitacora, Sistema, TokenUsuario, Usuario
from sso.recuperacion import GeneradorTokenReset, throttle_clave
from sso.tokens import token_autenticar, token_emitir
from tests.conftest import free_port

FORGOT = "/api/SSO/password/forgot"
RESET = "/api/SSO/password/reset"
URL_RESET = "https://app.example.com/cuenta/restablecer?lang=es"
OLD_PASSWORD = "Vieja-Clave-2024!"
NEW_PASSWORD = "Nueva+Clave-Segura-77"
EMAILS = ("ana@example.com", "nadie@example.com", "inactivo@example.com", "ajeno@example.com")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    keys = [throttle_clave(email=address, ip="127.0.0.1") for address in EMAILS]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def app():
    return Sistema.objects.create(alias="app", nombre="App & Co", url_reset=URL_RESET)


@pytest.fixture
def ana(app):
    user = Usuario.objects.create_user(
        username="ana", email="ana@example.com", password=OLD_PASSWORD, nombre="Ana Pérez"
    )
    user.accesos_sistemas.add(app)
    return user


@pytest.fixture
def headers(make_consumer):
    return make_consumer(nombre="producto", permisos=("sso",))[1]


@pytest.fixture
def call(api, headers, django_capture_on_commit_callbacks):
    def do(url, body):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(url, json.dumps(body), content_type="application/json", **headers)
        recuperacion.correos_esperar(timeout=10)
        return response

    return do


def forgot(call, address="ana@example.com", product="app"):
    return call(FORGOT, {"product": product, "email": address})


def link_of(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    links = re.findall(r"https://\S+", text)
    assert len(links) == 1
    return links[0]


def params_of(link: str) -> dict:
    query = parse_qs(urlsplit(link).query)
    return {"id": query["id"][0], "token": query["token"][0]}


def reset_body(params, password=NEW_PASSWORD, confirmation=None, product="app"):
    return {
        "product": product,
        **params,
        "password": password,
        "password_confirmation": password if confirmation is None else confirmation,
    }


def without_log_id(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "id_bitacora_log"}


def test_it_mails_a_reset_link_and_resets_the_password(call, smtp, ana, app):
    _, raw1 = token_emitir(usuario=ana, sistema=app)
    _, raw2 = token_emitir(usuario=ana)

    response = forgot(call)

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["status"] == "ok"
    assert body["code"] == 200
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["ana@example.com"]
    assert message["From"] == "soporte@example.com"
    assert "App & Co" in message["Subject"]
    link = link_of(message)
    assert link.startswith("https://app.example.com/cuenta/restablecer?")
    assert parse_qs(urlsplit(link).query)["lang"] == ["es"]
    params = params_of(link)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert link.replace("&", "&amp;") in html
    assert "App &amp; Co" in html
    assert "Ana Pérez" in message.get_body(preferencelist=("plain",)).get_content()

    response = call(RESET, reset_body(params))

    assert response.status_code == 200, response.json()
    assert response.json()["data"] is None
    assert response.json()["message"] == "Contraseña restablecida."
    ana.refresh_from_db()
    assert ana.check_password(NEW_PASSWORD)
    assert not TokenUsuario.objects.filter(usuario=ana, revocado__isnull=True).exists()
    assert token_autenticar(raw1) is None
    assert token_autenticar(raw2) is None


def test_it_accepts_a_token_once(call, smtp, ana):
    forgot(call)
    params = params_of(link_of(smtp.messages[0][1]))
    assert call(RESET, reset_body(params)).status_code == 200

    response = call(RESET, reset_body(params, password="Otra+Clave-Distinta-88"))

    assert response.status_code == 422
    assert response.json()["message"] == "Token inválido o vencido."
    assert response.json()["errors"] == {"token": ["Token inválido o vencido."]}
    ana.refresh_from_db()
    assert ana.check_password(NEW_PASSWORD)


def test_it_refuses_an_expired_token(call, ana, app):
    generador = GeneradorTokenReset(sistema=app)
    generador._now = lambda: datetime.now() - timedelta(seconds=30)
    token = generador.make_token(ana)
    params = {"id": recuperacion.urlsafe_base64_encode(str(ana.pk).encode()), "token": token}

    with override_settings(PASSWORD_RESET_TIMEOUT=1):
        response = call(RESET, reset_body(params))

    assert response.status_code == 422
    assert response.json()["errors"] == {"token": ["Token inválido o vencido."]}
    ana.refresh_from_db()
    assert ana.check_password(OLD_PASSWORD)


def test_it_refuses_a_token_of_another_product(call, smtp, ana):
    otro = Sistema.objects.create(
        alias="otro", nombre="Otro", url_reset="https://otro.example.com/r"
    )
    ana.accesos_sistemas.add(otro)
    forgot(call)
    params = params_of(link_of(smtp.messages[0][1]))

    response = call(RESET, reset_body(params, product="otro"))

    assert response.status_code == 422
    assert response.json()["errors"] == {"token": ["Token inválido o vencido."]}


@pytest.mark.parametrize(
    "params",
    [
        {"id": "MQ", "token": "abc-def"},
        {"id": "!!!", "token": "abc-def"},
        {"id": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "token": "abc-def"},
        {"id": "", "token": ""},
    ],
)
def test_it_refuses_forged_links(call, ana, params):
    response = call(RESET, reset_body(params))

    assert response.status_code == 422
    ana.refresh_from_db()
    assert ana.check_password(OLD_PASSWORD)


def test_it_answers_the_same_for_unknown_inactive_and_foreign_users(call, smtp, ana, app):
    Usuario.objects.create_user(
        username="inactivo", email="inactivo@example.com", password="x", is_active=False
    ).accesos_sistemas.add(app)
    Usuario.objects.create_user(username="ajeno", email="ajeno@example.com", password="x")

    known = forgot(call)
    assert len(smtp.messages) == 1
    for address in ("nadie@example.com", "inactivo@example.com", "ajeno@example.com"):
        response = forgot(call, address)
        assert response.status_code == known.status_code
        assert without_log_id(response.json()) == without_log_id(known.json())
    assert len(smtp.messages) == 1


def test_it_matches_the_email_case_insensitively(call, smtp, ana):
    assert forgot(call, "ANA@Example.com").status_code == 200
    assert [recipients for recipients, _ in smtp.messages] == [["ana@example.com"]]


def test_it_refuses_an_unknown_product(call, smtp, ana):
    response = forgot(call, product="desconocido")

    assert response.status_code == 422
    assert response.json()["errors"] == {"product": ["Producto no encontrado."]}
    assert smtp.messages == []


def test_it_answers_ok_and_logs_without_the_token_when_smtp_is_down(call, ana, app, caplog):
    port = free_port()  # nothing listens there
    expected = {GeneradorTokenReset(sistema=app).make_token(ana)}
    with (
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_TIMEOUT=5,
        ),
        caplog.at_level(logging.ERROR, logger="incidencias.sso.recuperacion"),
    ):
        response = forgot(call)
    expected.add(GeneradorTokenReset(sistema=app).make_token(ana))

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    errors = [r for r in caplog.records if r.name == "incidencias.sso.recuperacion"]
    assert len(errors) == 1
    assert f"user {ana.pk}" in errors[0].getMessage()
    for token in expected:
        assert token not in caplog.text
        assert token.split("-")[1] not in caplog.text


@override_settings(PASSWORD_FORGOT_MAX_PER_HOUR=5)
def test_it_throttles_mail_per_email_and_ip_with_the_same_answer(call, smtp, ana):
    answers = [forgot(call) for _ in range(7)]

    assert {a.status_code for a in answers} == {200}
    assert len({json.dumps(without_log_id(a.json())) for a in answers}) == 1
    assert len(smtp.messages) == 5


def test_it_refuses_passwords_that_do_not_match(call, smtp, ana):
    forgot(call)
    params = params_of(link_of(smtp.messages[0][1]))

    response = call(RESET, reset_body(params, confirmation="Otra+Clave-Distinta-88"))

    assert response.status_code == 422
    assert response.json()["errors"] == {"password_confirmation": ["Las contraseñas no coinciden."]}
    ana.refresh_from_db()
    assert ana.check_password(OLD_PASSWORD)


def test_it_applies_the_password_validators_in_spanish(call, smtp, ana):
    forgot(call)
    params = params_of(link_of(smtp.messages[0][1]))

    response = call(RESET, reset_body(params, password="12345"))

    assert response.status_code == 422
    messages = response.json()["errors"]["password"]
    assert any("demasiado corta" in message for message in messages)
    assert any("numérica" in message for message in messages)
    ana.refresh_from_db()
    assert ana.check_password(OLD_PASSWORD)
    # The token was not spent by the failed attempt.
    assert call(RESET, reset_body(params)).status_code == 200


def test_it_needs_the_sso_permission(api, make_consumer, ana):
    _, headers = make_consumer(nombre="lector", permisos=("usuarios",))
    body = json.dumps({"product": "app", "email": "ana@example.com"})

    response = api.post(FORGOT, body, content_type="application/json", **headers)

    assert response.status_code == 403


def test_it_keeps_secrets_out_of_the_audit_log(call, smtp, ana):
    forgot(call)
    params = params_of(link_of(smtp.messages[0][1]))
    call(RESET, reset_body(params, confirmation="Otra+Clave-Distinta-88"))
    call(RESET, reset_body(params))

    rows = list(Bitacora.objects.order_by("pk"))
    assert [row.endpoint for row in rows] == [FORGOT, RESET, RESET]
    assert [row.estado for row in rows] == [200, 422, 200]
    stored = json.dumps([row.resumen for row in rows], ensure_ascii=False)
    for secret in (params["token"], NEW_PASSWORD, "Otra+Clave-Distinta-88", OLD_PASSWORD):
        assert secret not in stored
    assert params["token"].split("-")[1] not in stored
