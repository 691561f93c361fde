"""The sign-in page of the authorization flow, and the consent step after it."""

import pytest
from django.test import Client

from sso import acceso

from .conftest import PASSWORD, autorizar_url, pkce, query


def _entrar(client, login, password=PASSWORD, siguiente="/", **extra):
    return client.post(
        "/oauth/login", {"login": login, "password": password, "next": siguiente}, **extra
    )


@pytest.mark.parametrize(
    "login", ["ana@example.com", "ANA@example.com", "+50688887777", "+506 8888-7777"]
)
def test_it_signs_in_with_email_or_phone(client, ana, login):
    response = _entrar(client, login, siguiente="/oauth/clientes/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/oauth/clientes/"
    assert client.session["_auth_user_id"] == str(ana.pk)


def test_it_refuses_a_wrong_password_an_unknown_login_and_an_inactive_user(client, ana):
    ana_inactiva = _entrar(client, "ana@example.com", "equivocada")
    desconocido = _entrar(client, "nadie@example.com")
    ana.is_active = False
    ana.save()
    inactiva = _entrar(client, "ana@example.com")

    for response in (ana_inactiva, desconocido, inactiva):
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
    assert inactiva.content == inactiva.content  # same page, same message
    assert b"Correo, tel\xc3\xa9fono o contrase\xc3\xb1a incorrectos." in desconocido.content


def test_it_never_redirects_to_another_site_after_signing_in(client, ana):
    response = _entrar(client, "ana@example.com", siguiente="https://evil.example.net/")

    assert response.headers["Location"] == "/"


def test_it_locks_the_account_out_before_hashing(client, ana, settings, monkeypatch):
    settings.SSO_MAX_FALLOS = 3
    for _ in range(3):
        assert _entrar(client, "ana@example.com", "mal").status_code == 200
    hasheos = []
    monkeypatch.setattr(acceso, "_burn_hasher", lambda secreto: hasheos.append(1))
    monkeypatch.setattr(type(ana), "check_password", lambda self, raw: hasheos.append(1))

    bloqueada = _entrar(client, "ana@example.com")  # the right password, too late

    assert bloqueada.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "Demasiados intentos fallidos" in bloqueada.content.decode()
    assert hasheos == []


def test_it_counts_failures_per_ip_across_accounts(client, ana, settings):
    settings.SSO_MAX_FALLOS_IP = 2
    _entrar(client, "uno@example.com")
    _entrar(client, "dos@example.com")

    response = _entrar(client, "ana@example.com")

    assert response.status_code == 429


def test_it_shares_the_lockout_of_sso_access(client, ana, settings):
    settings.SSO_MAX_FALLOS = 2
    clave = acceso.intentos_clave_cuenta(identificador="ana", usuario=ana)
    acceso.intentos_fallo(claves=[clave], motivo="test")
    acceso.intentos_fallo(claves=[clave], motivo="test")

    assert _entrar(client, "ana@example.com").status_code == 429


def test_it_requires_the_csrf_token(ana):
    navegador = Client(enforce_csrf_checks=True)
    navegador.get("/oauth/login")

    response = _entrar(navegador, "ana@example.com")

    assert response.status_code == 403
    assert "_auth_user_id" not in navegador.session


def test_it_speaks_spanish_by_default_and_english_when_asked(client):
    espanol = client.get("/oauth/login").content.decode()
    ingles = client.get("/oauth/login", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Iniciar sesión" in espanol and "Correo o teléfono" in espanol
    assert "Sign in" in ingles and "Email or phone" in ingles


def test_it_sends_an_anonymous_authorization_request_to_sign_in_and_back(client, ana, publico):
    _, challenge = pkce()
    url = autorizar_url(publico, code_challenge=challenge, code_challenge_method="S256")

    primera = client.get(url)
    assert primera.status_code == 302
    assert primera.headers["Location"].startswith("/oauth/login?next=")
    vuelta = _entrar(client, "ana@example.com", siguiente=url)
    assert vuelta.headers["Location"] == url
    final = client.get(url)

    assert final.status_code == 302  # first-party: no consent page
    assert "code" in query(final)


def test_it_asks_consent_for_a_third_party_client_and_honours_a_refusal(client, ana, confidencial):
    cliente, _ = confidencial
    client.force_login(ana)
    url = autorizar_url(cliente, scope="profile email")

    pagina = client.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert pagina.status_code == 200
    texto = pagina.content.decode()
    assert "Allow Creador de Sitios to use your account?" in texto
    assert "Your email address" in texto
    campos = pagina.context["form"].initial
    datos = {k: v for k, v in campos.items() if v is not None}
    rechazo = client.post(url, datos)
    assert query(rechazo)["error"] == "access_denied"
    assert query(rechazo)["state"] == "xyz123"
    aceptado = client.post(url, {**datos, "allow": "Authorize"})
    assert "code" in query(aceptado)
