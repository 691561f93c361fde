"""The login API of seed 003 (envelope D): sign-in, two factors, registration, logout, profile
and app sessions. Codes are read where a person would read them: from a real SMTP server
(aiosmtpd) and from a local HTTP SMS gateway (pytest-httpserver)."""

import base64
import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from sso import dosfa
from sso.models import (
    CodigoDosfa,
    CodigoRecuperacion,
    DispositivoCodigo,
    DispositivoTOTP,
    IntentoDosfa,
    SesionApp,
    TokenUsuario,
    Usuario,
)

PASSWORD = "Clave-Segura-2024!"
LOGIN = "/api/auth/login"
VERIFY = "/api/auth/2fa/verify"
RESEND = "/api/auth/2fa/resend"
REGISTER = "/api/auth/register"
LOGOUT = "/api/auth/logout"
PROFILE = "/api/auth/profile"
USER = "/api/user"
SESSIONS = "/api/app-sessions"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ana(db):
    usuario = Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password=PASSWORD,
        nombre="Ana Pérez",
        phone="+50688887777",
        tipo_usuario=Usuario.Tipo.CLIENTE,
    )
    usuario.groups.add(Group.objects.create(name="user"))
    return usuario


@pytest.fixture
def beto(db):
    return Usuario.objects.create_user(
        username="beto", email="beto@example.com", password=PASSWORD, nombre="Beto"
    )


def post(api, url, body, token=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return api.post(url, body, format="json", **extra)


def get(api, url, token):
    return api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def login(api, login="ana@example.com", password=PASSWORD):
    return post(api, LOGIN, {"login": login, "password": password})


def token_de(api, **kwargs) -> str:
    response = login(api, **kwargs)
    assert response.status_code == 200, response.json()
    return response.json()["data"]["token"]


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


# --- Sign-in without 2FA ------------------------------------------------------------------------


def test_it_signs_in_by_email_with_the_seed_body(api, ana):
    response = login(api)
    assert response.status_code == 200
    body = response.json()
    token = body["data"].pop("token")
    assert re.fullmatch(r"\d+\|\S+", token)
    assert body == {
        "success": True,
        "message": "Login exitoso",
        "data": {
            "user": {
                "id": ana.pk,
                "name": "Ana Pérez",
                "email": "ana@example.com",
                "phone": "+50688887777",
                "avatar": None,
                "is_active": True,
                "two_factor_enabled": False,
            },
            "roles": ["user"],
            "permissions": [],
        },
    }
    assert get(api, USER, token).status_code == 200


def test_it_signs_in_by_phone_written_any_way(api, ana):
    assert login(api, login="+506 8888-7777").status_code == 200
    assert login(api, login="+50688887777").status_code == 200


@pytest.mark.parametrize(
    ("login_", "password"),
    [("ana@example.com", "wrong"), ("nadie@example.com", PASSWORD), ("+50611112222", PASSWORD)],
)
def test_it_refuses_wrong_credentials_alike(api, ana, login_, password):
    response = login(api, login=login_, password=password)
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Credenciales inválidas."}


def test_it_refuses_an_inactive_user(api, ana):
    ana.is_active = False
    ana.save()
    assert login(api).status_code == 401


def test_it_validates_the_body(api):
    response = post(api, LOGIN, {"login": "ana@example.com"})
    assert response.status_code == 422
    assert response.json() == {
        "success": False,
        "message": "Error de validación.",
        "errors": {"password": ["Este campo es obligatorio."]},
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"login": ', "application/json", 400),
        (b"login=ana&password=x", "application/x-www-form-urlencoded", 400),
        (b"[1, 2]", "application/json", 400),
    ],
)
def test_bad_bodies_are_envelope_d_errors_never_500(api, body, content_type, status):
    response = api.generic("POST", LOGIN, body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["success"] is False


def test_an_oversized_body_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 100
    response = api.generic("POST", LOGIN, b'{"login": "' + b"a" * 200 + b'"}', "application/json")
    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "message": "El cuerpo de la solicitud excede el tamaño permitido.",
    }


def test_unknown_auth_paths_answer_in_envelope_d(api):
    response = api.get("/api/auth/nothing")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "Recurso no encontrado."}


def test_it_locks_out_an_account_before_hashing(api, ana, settings):
    for _ in range(settings.SSO_MAX_FALLOS):
        assert login(api, password="wrong").status_code == 401
    response = login(api)  # the right password, too late
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["success"] is False


def test_it_locks_out_an_ip_across_accounts(api, ana, beto, settings):
    settings.SSO_MAX_FALLOS = 100
    for i in range(settings.SSO_MAX_FALLOS_IP):
        login(api, login=f"nadie{i}@example.com")
    assert login(api, login="beto@example.com").status_code == 429


# --- Email codes --------------------------------------------------------------------------------


@pytest.fixture
def ana_email(ana):
    DispositivoCodigo.objects.create(user=ana, name="Email", metodo="email")
    return ana


def test_it_sends_an_email_code_and_verifies_it(api, ana_email, smtp):
    response = login(api)
    assert response.status_code == 200
    body = response.json()
    temp_token = body.pop("temp_token")
    assert temp_token.startswith("temp_")
    assert body == {
        "success": True,
        "requires_two_factor": True,
        "message": "Código de verificación enviado",
        "sent_to": "ana@example.com",
        "method": "email",
    }
    [(recipients, message)] = smtp.messages
    assert recipients == ["ana@example.com"]
    code = code_in(message.get_content())

    response = post(api, VERIFY, {"temp_token": temp_token, "code": code})
    assert response.status_code == 200
    data = response.json()["data"]
    assert response.json()["message"] == "Login exitoso"
    assert data["user"]["two_factor_enabled"] is True
    assert get(api, PROFILE, data["token"]).status_code == 200
    # Single-use: the same code, or the same temp_token, never again.
    again = post(api, VERIFY, {"temp_token": temp_token, "code": code})
    assert again.status_code == 401


def test_codes_are_stored_only_as_hashes(api, ana_email, smtp):
    temp_token = login(api).json()["temp_token"]
    code = code_in(smtp.messages[0][1].get_content())
    [fila] = CodigoDosfa.objects.values()
    intento = IntentoDosfa.objects.get()
    assert code not in str(fila)
    assert fila["codigo_hash"] == dosfa.codigo_hash(intento_id=intento.pk, codigo=code)
    assert temp_token not in str(IntentoDosfa.objects.values().get())


def test_a_code_works_only_for_the_attempt_it_was_sent_for(api, ana_email, smtp):
    first = login(api).json()["temp_token"]
    second = login(api).json()["temp_token"]
    code_of_first = code_in(smtp.messages[0][1].get_content())
    response = post(api, VERIFY, {"temp_token": second, "code": code_of_first})
    assert response.status_code == 422
    assert post(api, VERIFY, {"temp_token": first, "code": code_of_first}).status_code == 200


def test_a_code_expires_after_ten_minutes(api, ana_email, smtp):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        temp_token = login(api).json()["temp_token"]
        code = code_in(smtp.messages[0][1].get_content())
        traveller.shift(timedelta(minutes=10, seconds=1))
        response = post(api, VERIFY, {"temp_token": temp_token, "code": code})
    assert response.status_code == 401
    assert response.json()["message"].startswith("Token temporal inválido o vencido")


def test_five_wrong_codes_burn_the_temp_token(api, ana_email, smtp, settings):
    settings.SSO_MAX_FALLOS = 50  # the burn, not the account lockout, is under test
    temp_token = login(api).json()["temp_token"]
    code = code_in(smtp.messages[0][1].get_content())
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        response = post(api, VERIFY, {"temp_token": temp_token, "code": wrong})
        assert response.status_code == 422
        assert response.json() == {
            "success": False,
            "message": "Código de verificación inválido.",
            "errors": {"code": [f"Código inválido o vencido. Intentos restantes: {left}."]},
        }
    fifth = post(api, VERIFY, {"temp_token": temp_token, "code": wrong})
    assert fifth.status_code == 401
    assert fifth.json()["message"] == "Demasiados códigos incorrectos. Inicie sesión de nuevo."
    # Burnt: the right code no longer helps.
    assert post(api, VERIFY, {"temp_token": temp_token, "code": code}).status_code == 401
    assert IntentoDosfa.objects.get().quemado is not None


def test_wrong_codes_count_on_the_account_lockout(api, ana_email, smtp, settings):
    settings.SSO_MAX_FALLOS = 3
    temp_token = login(api).json()["temp_token"]
    for _ in range(3):
        post(api, VERIFY, {"temp_token": temp_token, "code": "000000"})
    assert login(api).status_code == 429


def test_resend_sends_a_new_code_and_the_old_one_dies(api, ana_email, smtp, settings):
    settings.TWO_FACTOR_RESEND_SECONDS = 0
    temp_token = login(api).json()["temp_token"]
    old = code_in(smtp.messages[0][1].get_content())
    response = post(api, RESEND, {"temp_token": temp_token, "method": "email"})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Código de verificación enviado",
        "sent_to": "ana@example.com",
        "method": "email",
    }
    new = code_in(smtp.messages[1][1].get_content())
    if new != old:
        assert post(api, VERIFY, {"temp_token": temp_token, "code": old}).status_code == 422
    assert post(api, VERIFY, {"temp_token": temp_token, "code": new}).status_code == 200


def test_resend_is_rate_limited(api, ana_email, smtp, settings):
    settings.TWO_FACTOR_RESEND_SECONDS = 60
    settings.TWO_FACTOR_MAX_SENDS = 3
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        temp_token = login(api).json()["temp_token"]
        too_soon = post(api, RESEND, {"temp_token": temp_token, "method": "email"})
        assert too_soon.status_code == 429
        assert too_soon.json() == {
            "success": False,
            "message": "Espere antes de pedir otro código.",
        }
        assert 0 < int(too_soon["Retry-After"]) <= 61
        for _ in range(2):
            traveller.shift(timedelta(seconds=61))
            ok = post(api, RESEND, {"temp_token": temp_token, "method": "email"})
            assert ok.status_code == 200
        traveller.shift(timedelta(seconds=61))
        over = post(api, RESEND, {"temp_token": temp_token, "method": "email"})
    assert over.status_code == 429
    assert len(smtp.messages) == 3


def test_resend_refuses_a_method_the_user_does_not_have(api, ana_email, smtp):
    temp_token = login(api).json()["temp_token"]
    response = post(api, RESEND, {"temp_token": temp_token, "method": "sms"})
    assert response.status_code == 422
    assert "method" in response.json()["errors"]
    bad = post(api, RESEND, {"temp_token": temp_token, "method": "fax"})
    assert bad.status_code == 422
    unknown = post(api, RESEND, {"temp_token": "temp_nope", "method": "email"})
    assert unknown.status_code == 401


def test_a_mail_server_down_is_a_clear_error_without_the_code_in_the_log(api, ana_email, caplog):
    from tests.conftest import free_port

    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port(),
        EMAIL_TIMEOUT=2,
    ):
        response = login(api)
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "message": "No se pudo enviar el código de verificación. Intente de nuevo.",
    }
    assert "not sent by email" in caplog.text
    assert not re.search(r"\b\d{6}\b", caplog.text.replace(str(ana_email.pk), ""))


# --- SMS codes ----------------------------------------------------------------------------------


@pytest.fixture
def gateway(httpserver, settings):
    settings.SMS_BACKEND = "http"
    settings.SMS_GATEWAY_URL = httpserver.url_for("/v1/sms")
    settings.SMS_GATEWAY_USER = "portal"
    settings.SMS_GATEWAY_PASSWORD = "s3cret"
    settings.SMS_SENDER = "Incidencias"
    settings.SMS_RETRIES = 1
    return httpserver


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def ana_sms(ana):
    DispositivoCodigo.objects.create(user=ana, name="SMS", metodo="sms")
    return ana


def test_it_sends_an_sms_code_through_the_http_gateway(api, ana_sms, gateway):
    gateway.expect_oneshot_request(
        "/v1/sms",
        method="POST",
        headers={"Authorization": basic("portal", "s3cret"), "Content-Type": "application/json"},
    ).respond_with_json({"message_id": "m-1", "status": "accepted"}, status=202)
    response = login(api, login="+50688887777")
    assert response.status_code == 200
    assert response.json()["method"] == "sms"
    assert response.json()["sent_to"] == "+50688887777"
    gateway.check_assertions()
    [(request, _)] = gateway.log
    sent = request.get_json()
    assert sent["to"] == "+50688887777"
    assert sent["from"] == "Incidencias"
    code = code_in(sent["text"])
    verified = post(api, VERIFY, {"temp_token": response.json()["temp_token"], "code": code})
    assert verified.status_code == 200


def test_a_gateway_5xx_is_retried_and_a_4xx_is_not(api, ana_sms, gateway):
    gateway.expect_ordered_request("/v1/sms", method="POST").respond_with_data("busy", 503)
    gateway.expect_ordered_request("/v1/sms", method="POST").respond_with_json({}, status=200)
    assert login(api).status_code == 200
    assert len(gateway.log) == 2
    gateway.clear()
    gateway.expect_request("/v1/sms", method="POST").respond_with_json(
        {"error": "invalid number"}, status=400
    )
    assert login(api).status_code == 500
    assert len(gateway.log) == 1


def test_resend_switches_to_sms_when_the_user_has_both(api, ana_email, gateway, smtp, settings):
    settings.TWO_FACTOR_RESEND_SECONDS = 0
    DispositivoCodigo.objects.create(user=ana_email, name="SMS", metodo="sms")
    gateway.expect_request("/v1/sms", method="POST").respond_with_json({"message_id": "m-2"})
    temp_token = login(api).json()["temp_token"]
    assert len(smtp.messages) == 1
    response = post(api, RESEND, {"temp_token": temp_token, "method": "sms"})
    assert response.json()["method"] == "sms"
    code = code_in(gateway.log[-1][0].get_json()["text"])
    assert post(api, VERIFY, {"temp_token": temp_token, "code": code}).status_code == 200


def test_the_console_backend_prints_the_sms(api, ana_sms, capsys):
    response = login(api)
    assert response.status_code == 200
    out = capsys.readouterr().out
    assert "SMS to +50688887777" in out and re.search(r"\b\d{6}\b", out)


# --- TOTP and recovery codes --------------------------------------------------------------------


@pytest.fixture
def app_totp(ana):
    dispositivo = dosfa.totp_crear(usuario=ana)
    totp = pyotp.TOTP(dosfa.totp_secreto(dispositivo))
    codigos = dosfa.totp_confirmar(dispositivo=dispositivo, code=totp.now())
    dispositivo.refresh_from_db()
    return totp, codigos


def test_it_signs_in_with_a_totp_code_and_refuses_it_twice(api, ana, app_totp):
    totp, _ = app_totp
    with time_machine.travel(timezone.now() + timedelta(seconds=90), tick=False):
        body = login(api).json()
        assert body["method"] == "totp"
        assert body["sent_to"] is None
        assert body["message"] == "Ingrese el código de su aplicación de autenticación"
        code = totp.now()
        ok = post(api, VERIFY, {"temp_token": body["temp_token"], "code": code})
        assert ok.status_code == 200
        again = login(api).json()["temp_token"]
        reused = post(api, VERIFY, {"temp_token": again, "code": code})
    assert reused.status_code == 422


def test_the_totp_key_is_encrypted_at_rest(ana, app_totp):
    from django.db import connection

    clave_hex = DispositivoTOTP.objects.get().clave
    with connection.cursor() as cursor:
        cursor.execute("SELECT clave FROM sso_dispositivototp")
        [(raw,)] = cursor.fetchall()
    assert clave_hex not in raw
    assert raw.startswith("v1:")


def test_recovery_codes_sign_in_once_and_are_stored_hashed(api, ana, app_totp):
    _, codigos = app_totp
    assert len(codigos) == 10
    guardados = list(CodigoRecuperacion.objects.values_list("codigo_hash", flat=True))
    assert len(guardados) == 10
    assert not any(c.replace("-", "") in h for c in codigos for h in guardados)
    temp_token = login(api).json()["temp_token"]
    assert post(api, VERIFY, {"temp_token": temp_token, "code": codigos[0]}).status_code == 200
    temp_token = login(api).json()["temp_token"]
    assert post(api, VERIFY, {"temp_token": temp_token, "code": codigos[0]}).status_code == 422
    assert post(api, VERIFY, {"temp_token": temp_token, "code": codigos[1]}).status_code == 200


def test_a_totp_user_cannot_fall_back_to_email(api, ana, app_totp, smtp):
    temp_token = login(api).json()["temp_token"]
    assert post(api, RESEND, {"temp_token": temp_token, "method": "email"}).status_code == 422
    assert smtp.messages == []


def test_required_staff_without_a_device_get_an_email_code(api, beto, smtp, settings):
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    beto.is_staff = True
    beto.save()
    body = login(api, login="beto@example.com").json()
    assert body["requires_two_factor"] is True
    assert body["method"] == "email"
    code = code_in(smtp.messages[0][1].get_content())
    assert post(api, VERIFY, {"temp_token": body["temp_token"], "code": code}).status_code == 200


# --- Register -----------------------------------------------------------------------------------

NEW = {
    "name": "Juan Pérez",
    "email": "nuevo@example.com",
    "phone": "+521234567890",
    "password": "Otra+Clave-Segura-99",
    "password_confirmation": "Otra+Clave-Segura-99",
}


def test_registration_closed_is_403(api, settings):
    settings.REGISTRATION_OPEN = False
    response = post(api, REGISTER, NEW)
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "El registro de usuarios está cerrado."}
    assert not Usuario.objects.filter(email="nuevo@example.com").exists()


def test_registration_open_creates_a_customer_never_staff(api, settings):
    settings.REGISTRATION_OPEN = True
    response = post(api, REGISTER, {**NEW, "is_staff": True, "is_superuser": True})
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Usuario registrado"
    assert body["data"]["roles"] == ["user"]
    assert body["data"]["permissions"] == ["edit-profile", "view-profile"]
    usuario = Usuario.objects.get(email="nuevo@example.com")
    assert (usuario.is_staff, usuario.is_superuser) == (False, False)
    assert usuario.tipo_usuario == Usuario.Tipo.CLIENTE
    assert get(api, USER, body["data"]["token"]).status_code == 200
    assert login(api, login="+521234567890", password=NEW["password"]).status_code == 200


def test_registration_validates_its_fields(api, settings, ana):
    settings.REGISTRATION_OPEN = True
    response = post(
        api,
        REGISTER,
        {**NEW, "email": "ANA@example.com", "password_confirmation": "different"},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["email"] == ["El email ya está registrado."]
    assert errors["password_confirmation"] == ["Las contraseñas no coinciden."]
    nothing = post(api, REGISTER, {**NEW, "email": "", "phone": ""})
    assert nothing.status_code == 422
    assert nothing.json()["errors"]["email"] == ["Indique un email o un teléfono."]


# --- Logout, profile, user ----------------------------------------------------------------------


def test_logout_revokes_the_token_in_use_only(api, ana):
    first = token_de(api)
    second = token_de(api)
    response = post(api, LOGOUT, {}, token=first)
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Sesión cerrada", "data": None}
    assert get(api, PROFILE, first).status_code == 401
    assert get(api, PROFILE, second).status_code == 200


def test_protected_endpoints_need_a_valid_token(api, ana):
    for url in (PROFILE, USER, SESSIONS):
        response = api.get(url)
        assert response.status_code == 401
        assert response.json() == {"success": False, "message": "No autenticado."}
        assert get(api, url, "1|nope").status_code == 401
    assert post(api, LOGOUT, {}).status_code == 401


def test_profile_has_the_seed_shape(api, ana):
    token = token_de(api)
    assert get(api, PROFILE, token).json() == {
        "success": True,
        "data": {
            "user": {
                "id": ana.pk,
                "name": "Ana Pérez",
                "email": "ana@example.com",
                "phone": "+50688887777",
                "avatar": None,
                "is_active": True,
            }
        },
    }


def test_user_has_roles_and_permissions_from_groups(api, ana):
    from django.contrib.auth.models import Permission

    grupo = Group.objects.get(name="user")
    grupo.permissions.add(Permission.objects.get(codename="view-profile"))
    data = get(api, USER, token_de(api)).json()["data"]
    assert data["roles"] == ["user"]
    assert data["permissions"] == ["view-profile"]
    assert data["user"]["two_factor_enabled"] is False


def test_it_reads_the_users_second_factor_roles_and_permissions_in_one_statement(api, ana):
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = token_de(api)
    otros = Group.objects.create(name="agentes")
    ana.groups.add(otros)
    otros.permissions.add(Permission.objects.get(codename="view-profile"))
    Group.objects.get(name="user").permissions.add(Permission.objects.get(codename="view-profile"))
    ana.user_permissions.add(Permission.objects.get(codename="edit-profile"))
    DispositivoCodigo.objects.create(user=ana, name="sms", metodo="sms", confirmed=False)

    data = get(api, USER, token).json()["data"]  # records the token's first use
    with CaptureQueriesContext(connection) as queries:
        again = get(api, USER, token).json()["data"]

    # The token (with its user), then the second factor, groups and permissions.
    assert len(queries.captured_queries) == 2
    assert again == data
    assert data["roles"] == ["agentes", "user"]
    assert data["permissions"] == ["edit-profile", "view-profile"]
    assert data["user"]["two_factor_enabled"] is False  # not confirmed
    DispositivoCodigo.objects.update(confirmed=True)
    assert get(api, USER, token).json()["data"]["user"]["two_factor_enabled"] is True


def test_it_gives_a_superuser_every_permission(api, ana):
    from django.contrib.auth.models import Permission

    ana.is_superuser = True
    ana.save()

    data = get(api, USER, token_de(api)).json()["data"]

    codenames = sorted(set(Permission.objects.values_list("codename", flat=True)))
    assert data["permissions"] == codenames
    assert data["roles"] == ["user"]


# --- App sessions -------------------------------------------------------------------------------

SESION = {"app_name": "Creador de Sitios Web", "ip_address": "203.0.113.7", "user_agent": "Moz"}


def test_it_registers_an_app_session_with_the_seed_body(api, ana):
    token = token_de(api)
    response = post(api, f"{SESSIONS}/register", SESION, token=token)
    assert response.status_code == 201
    body = response.json()
    created = body["data"].pop("created_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created)
    assert body == {
        "success": True,
        "message": "Sesión de app registrada",
        "data": {
            "id": SesionApp.objects.get().pk,
            "user_id": ana.pk,
            "app_name": "Creador de Sitios Web",
            "is_active": True,
        },
    }


def test_users_see_and_end_only_their_own_sessions(api, ana, beto):
    token_ana = token_de(api)
    token_beto = token_de(api, login="beto@example.com")
    id_ana = post(api, f"{SESSIONS}/register", SESION, token=token_ana).json()["data"]["id"]
    post(api, f"{SESSIONS}/register", {**SESION, "app_name": "Otra"}, token=token_beto)

    listed = get(api, SESSIONS, token_ana).json()["data"]
    assert [(s["type"], s["app_name"]) for s in listed] == [
        ("app", "Creador de Sitios Web"),
        ("token", "API"),
    ]
    assert listed[0]["id"] == id_ana

    # Beto cannot end Ana's session or token.
    beto_token_id = TokenUsuario.objects.filter(usuario=ana).get().pk
    for foreign in (id_ana, f"token-{beto_token_id}"):
        response = api.delete(f"{SESSIONS}/{foreign}", HTTP_AUTHORIZATION=f"Bearer {token_beto}")
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "Sesión no encontrada."}
    assert len(get(api, SESSIONS, token_ana).json()["data"]) == 2

    ended = api.delete(f"{SESSIONS}/{id_ana}", HTTP_AUTHORIZATION=f"Bearer {token_ana}")
    assert ended.json() == {"success": True, "message": "Sesión terminada", "data": None}
    assert [s["type"] for s in get(api, SESSIONS, token_ana).json()["data"]] == ["token"]


def test_ending_a_token_session_revokes_the_token(api, ana):
    keep = token_de(api)
    drop = token_de(api)
    drop_id = drop.split("|")[0]
    response = api.delete(f"{SESSIONS}/token-{drop_id}", HTTP_AUTHORIZATION=f"Bearer {keep}")
    assert response.status_code == 200
    assert get(api, PROFILE, drop).status_code == 401
    assert get(api, PROFILE, keep).status_code == 200


def test_logout_ends_the_app_sessions_registered_with_the_token(api, ana):
    token = token_de(api)
    post(api, f"{SESSIONS}/register", SESION, token=token)
    post(api, LOGOUT, {}, token=token)
    assert SesionApp.objects.get().terminado is not None


def test_disabling_a_user_ends_all_their_sessions(api, ana, admin_client):
    tokens = [token_de(api), token_de(api)]
    for token in tokens:
        post(api, f"{SESSIONS}/register", SESION, token=token)
    ana.is_active = False
    ana.save()
    assert not SesionApp.objects.filter(usuario=ana, terminado__isnull=True).exists()
    assert not TokenUsuario.objects.filter(usuario=ana, revocado__isnull=True).exists()
    ana.is_active = True
    ana.save()
    for token in tokens:
        assert get(api, PROFILE, token).status_code == 401


def test_register_session_validates_its_body(api, ana):
    token = token_de(api)
    response = post(api, f"{SESSIONS}/register", {"ip_address": "not-an-ip"}, token=token)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"app_name", "ip_address"}
