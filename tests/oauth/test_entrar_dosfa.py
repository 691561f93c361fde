"""The second factor on the sign-in page of the authorization flow: email codes read from a real
SMTP server, TOTP codes from pyotp, and the authorization-code flow completed after them."""

import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from sso import acceso, dosfa
from sso.models import DispositivoCodigo

from .conftest import PASSWORD, autorizar_url, canjear, pkce, query

LOGIN = "/oauth/login"
DOSFA = "/oauth/login/2fa"


@pytest.fixture
def ana_email(ana):
    DispositivoCodigo.objects.create(user=ana, name="Email", metodo="email")
    return ana


@pytest.fixture
def app_totp(ana):
    dispositivo = dosfa.totp_crear(usuario=ana)
    totp = pyotp.TOTP(dosfa.totp_secreto(dispositivo))
    codigos = dosfa.totp_confirmar(dispositivo=dispositivo, code=totp.now())
    return totp, codigos


def _entrar(client, siguiente="/", password=PASSWORD):
    return client.post(LOGIN, {"login": "ana@example.com", "password": password, "next": siguiente})


def _codigo(smtp, indice=-1) -> str:
    _, mensaje = smtp.messages[indice]
    return re.search(r"\b(\d{6})\b", mensaje.get_content()).group(1)


def _verificar(client, code):
    return client.post(DOSFA, {"code": code})


def _flujo(client, publico):
    """An anonymous authorization request: (its URL, the PKCE verifier)."""
    verifier, challenge = pkce()
    url = autorizar_url(
        publico, scope="openid profile", code_challenge=challenge, code_challenge_method="S256"
    )
    assert client.get(url).headers["Location"].startswith(f"{LOGIN}?next=")
    return url, verifier


def test_it_asks_an_email_code_and_completes_the_authorization_flow(
    client, ana_email, publico, smtp
):
    url, verifier = _flujo(client, publico)

    primer_paso = _entrar(client, siguiente=url)
    assert primer_paso.status_code == 302
    assert primer_paso.headers["Location"] == DOSFA
    assert "_auth_user_id" not in client.session  # the password alone signs nobody in
    pagina = client.get(DOSFA)
    assert pagina.status_code == 200
    assert 'name="code"' in pagina.content.decode()
    assert "ana@example.com" in pagina.content.decode()  # where the code went
    [(destinatarios, _)] = smtp.messages
    assert destinatarios == ["ana@example.com"]

    vuelta = _verificar(client, _codigo(smtp))

    assert vuelta.status_code == 302
    assert vuelta.headers["Location"] == url
    assert client.session["_auth_user_id"] == str(ana_email.pk)
    assert client.session[DEVICE_ID_SESSION_KEY]  # django-otp sees a verified session
    autorizado = client.get(url)
    assert autorizado.status_code == 302  # first-party: no consent page
    token = canjear(client, publico, query(autorizado)["code"], verifier)
    assert token.status_code == 200
    assert token.json()["access_token"]


def test_it_takes_a_totp_code_and_then_a_recovery_code(client, ana, publico, app_totp):
    totp, codigos = app_totp
    url, verifier = _flujo(client, publico)
    with time_machine.travel(timezone.now() + timedelta(seconds=90), tick=False):
        assert _entrar(client, siguiente=url).headers["Location"] == DOSFA
        pagina = client.get(DOSFA, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "authenticator app" in pagina
        assert 'name="reenviar"' not in pagina  # nothing to resend to an app

        vuelta = _verificar(client, totp.now())

    assert vuelta.headers["Location"] == url
    assert client.session[DEVICE_ID_SESSION_KEY]
    autorizado = client.get(url)
    assert canjear(client, publico, query(autorizado)["code"], verifier).status_code == 200
    # Another browser: a recovery code instead of the app.
    otro = Client()
    _entrar(otro)
    assert _verificar(otro, codigos[0]).headers["Location"] == "/"
    assert otro.session["_auth_user_id"] == str(ana.pk)


def test_a_wrong_code_says_how_many_attempts_are_left(client, ana_email, smtp):
    _entrar(client)
    bueno = _codigo(smtp)
    malo = "000000" if bueno != "000000" else "111111"

    response = _verificar(client, malo)

    assert response.status_code == 200
    assert "Intentos restantes: 4." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_burnt_attempt_goes_back_to_the_sign_in_page(client, ana_email, smtp, settings):
    settings.TWO_FACTOR_MAX_WRONG = 2
    siguiente = "/oauth/clientes/"
    _entrar(client, siguiente=siguiente)
    bueno = _codigo(smtp)
    malo = "000000" if bueno != "000000" else "111111"
    _verificar(client, malo)

    quemado = _verificar(client, malo)

    assert quemado.status_code == 302
    assert quemado.headers["Location"] == f"{LOGIN}?next=%2Foauth%2Fclientes%2F"
    pagina = client.get(quemado.headers["Location"]).content.decode()
    assert "Demasiados códigos incorrectos" in pagina
    # The right code is worthless now, and the 2FA page has nothing pending.
    assert client.get(DOSFA).headers["Location"] == LOGIN
    assert "_auth_user_id" not in client.session


def test_wrong_codes_lock_the_account_out(client, ana_email, smtp, settings):
    settings.SSO_MAX_FALLOS = 2
    _entrar(client)
    bueno = _codigo(smtp)
    malo = "000000" if bueno != "000000" else "111111"
    _verificar(client, malo)
    _verificar(client, malo)

    bloqueado = _verificar(client, bueno)

    assert bloqueado.status_code == 429
    assert "Demasiados intentos fallidos" in bloqueado.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_account_failures_are_cleared_only_when_the_whole_sign_in_succeeds(
    client, ana_email, smtp, settings
):
    settings.SSO_MAX_FALLOS = 5
    _entrar(client, password="mal")
    _entrar(client, password="mal")
    clave = acceso.intentos_clave_cuenta(identificador="", usuario=ana_email)

    _entrar(client)
    assert cache.get(clave) == 2  # the right password alone clears nothing

    _verificar(client, _codigo(smtp))
    assert cache.get(clave) is None


def test_resend_sends_a_new_code_and_is_rate_limited(client, ana_email, smtp, settings):
    settings.TWO_FACTOR_RESEND_SECONDS = 60
    _entrar(client)
    viejo = _codigo(smtp)
    assert 'name="reenviar" value="email"' in client.get(DOSFA).content.decode()

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        otra_vez = client.post(DOSFA, {"reenviar": "email"})
        assert otra_vez.headers["Location"] == DOSFA
        nuevo = _codigo(smtp)
        pronto = client.post(DOSFA, {"reenviar": "email"})
        assert pronto.status_code == 429
        assert "antes de pedir otro código" in pronto.content.decode()
        sms = client.post(DOSFA, {"reenviar": "sms"})
        assert sms.status_code == 400
        assert len(smtp.messages) == 2
        if viejo != nuevo:
            assert _verificar(client, viejo).status_code == 200  # the old code died
        assert _verificar(client, nuevo).headers["Location"] == "/"


def test_the_2fa_step_requires_the_csrf_token(ana_email, smtp):
    navegador = Client(enforce_csrf_checks=True)
    pagina = navegador.get(LOGIN).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', pagina).group(1)
    navegador.post(
        LOGIN,
        {"login": "ana@example.com", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
    )

    sin_token = navegador.post(DOSFA, {"code": _codigo(smtp)})

    assert sin_token.status_code == 403
    assert "_auth_user_id" not in navegador.session


def test_the_2fa_page_without_a_pending_sign_in_goes_to_the_sign_in_page(client):
    assert client.get(DOSFA).headers["Location"] == LOGIN
    assert client.post(DOSFA, {"code": "123456"}).headers["Location"] == LOGIN


def test_the_2fa_page_speaks_spanish_and_english(client, ana_email, smtp):
    _entrar(client)

    espanol = client.get(DOSFA).content.decode()
    ingles = client.get(DOSFA, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Código de verificación" in espanol and "Enviar un código nuevo por correo" in espanol
    assert "Verification code" in ingles and "Send a new code by email" in ingles


def test_staff_required_to_use_2fa_sign_in_without_a_loop(client, ana, smtp, settings):
    """Staff without a device get an email code on the sign-in page; its pages are not sent to
    the staff verification page (which would send them back)."""
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    ana.is_staff = True
    ana.save()
    client.force_login(ana)  # a signed-in, unverified staff session
    assert client.get(LOGIN).status_code == 200
    client.logout()

    assert _entrar(client).headers["Location"] == DOSFA
    assert client.get(DOSFA).status_code == 200
    assert _verificar(client, _codigo(smtp)).headers["Location"] == "/"
    assert client.session["_auth_user_id"] == str(ana.pk)
