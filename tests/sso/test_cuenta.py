"""The account pages: sign-out, password change under the sign-in lockout, idle sessions, and
the security headers every page carries."""

import time

import pytest
from django.urls import reverse

from sso.middleware import SesionInactivaMiddleware
from sso.models import Usuario

CLAVE = "una-clave-larga-y-buena-9"


@pytest.fixture
def ana(soporte):
    return Usuario.objects.create_user(
        username="ana", email="ana@example.com", password=CLAVE, departamento=soporte
    )


@pytest.fixture
def sesion(client, ana):
    client.force_login(ana)
    return client


def test_it_signs_out_only_by_post(sesion):
    assert sesion.get(reverse("cuenta-salir")).status_code == 405
    respuesta = sesion.post(reverse("cuenta-salir"))
    assert respuesta.status_code == 302
    assert respuesta["Location"] == reverse("sso:login")
    assert "_auth_user_id" not in sesion.session


def test_it_refuses_sign_out_without_csrf(ana):
    from django.test import Client

    cliente = Client(enforce_csrf_checks=True)
    cliente.force_login(ana)
    assert cliente.post(reverse("cuenta-salir")).status_code == 403
    assert "_auth_user_id" in cliente.session


def test_it_changes_the_password_and_keeps_this_session(sesion, ana):
    respuesta = sesion.post(
        reverse("cuenta-clave"),
        {
            "old_password": CLAVE,
            "new_password1": "otra-clave-muy-buena-7",
            "new_password2": "otra-clave-muy-buena-7",
        },
    )
    assert respuesta.status_code == 302
    ana.refresh_from_db()
    assert ana.check_password("otra-clave-muy-buena-7")
    # This session still works (its hash was updated).
    assert sesion.get(reverse("cuenta-clave")).status_code == 200


def test_it_refuses_a_wrong_current_password_and_locks_out(sesion, ana, settings):
    settings.SSO_MAX_FALLOS = 3
    datos = {
        "old_password": "mala",
        "new_password1": "x-nueva-clave-77",
        "new_password2": "x-nueva-clave-77",
    }
    for _ in range(3):
        respuesta = sesion.post(reverse("cuenta-clave"), datos)
        assert respuesta.status_code == 200
        assert respuesta.context["form"].errors["old_password"]
    # Locked now: even the right password is refused, and the hasher never runs.
    datos["old_password"] = CLAVE
    respuesta = sesion.post(reverse("cuenta-clave"), datos)
    assert (
        respuesta.context["form"].errors["old_password"][0].startswith(("Too many", "Demasiados"))
    )
    ana.refresh_from_db()
    assert ana.check_password(CLAVE)


def test_it_refuses_a_weak_new_password(sesion, ana):
    respuesta = sesion.post(
        reverse("cuenta-clave"),
        {"old_password": CLAVE, "new_password1": "123", "new_password2": "123"},
    )
    assert respuesta.status_code == 200
    assert respuesta.context["form"].errors["new_password2"]
    ana.refresh_from_db()
    assert ana.check_password(CLAVE)


def test_it_sends_anonymous_users_to_sign_in(client):
    respuesta = client.get(reverse("cuenta-clave"))
    assert respuesta.status_code == 302
    assert respuesta["Location"].startswith(reverse("sso:login"))


def test_it_ends_an_idle_session(sesion, settings):
    settings.SESSION_IDLE_MINUTES = 30
    assert sesion.get(reverse("cuenta-clave")).status_code == 200
    s = sesion.session
    s[SesionInactivaMiddleware.CLAVE] = int(time.time()) - 31 * 60
    s.save()
    respuesta = sesion.get(reverse("cuenta-clave"))
    assert respuesta.status_code == 302
    assert respuesta["Location"].startswith(reverse("sso:login"))
    assert "_auth_user_id" not in sesion.session


def test_it_keeps_an_active_session(sesion, settings):
    settings.SESSION_IDLE_MINUTES = 30
    s = sesion.session
    s[SesionInactivaMiddleware.CLAVE] = int(time.time()) - 29 * 60
    s.save()
    assert sesion.get(reverse("cuenta-clave")).status_code == 200
    # The stamp moved forward.
    assert sesion.session[SesionInactivaMiddleware.CLAVE] >= int(time.time()) - 5


def test_it_tells_htmx_to_load_the_sign_in_page(sesion, settings):
    settings.SESSION_IDLE_MINUTES = 1
    s = sesion.session
    s[SesionInactivaMiddleware.CLAVE] = int(time.time()) - 120
    s.save()
    respuesta = sesion.get(reverse("cuenta-clave"), HTTP_HX_REQUEST="true")
    assert respuesta.status_code == 204
    assert respuesta["HX-Redirect"].startswith(reverse("sso:login"))


def test_it_never_expires_with_zero(sesion, settings):
    settings.SESSION_IDLE_MINUTES = 0
    s = sesion.session
    s[SesionInactivaMiddleware.CLAVE] = 1
    s.save()
    assert sesion.get(reverse("cuenta-clave")).status_code == 200


def test_it_sends_a_strict_content_security_policy(sesion):
    politica = sesion.get(reverse("cuenta-clave"))["Content-Security-Policy"]
    directivas = dict(d.strip().split(" ", 1) for d in politica.split(";") if d.strip())
    assert directivas["script-src"] == "'self'"
    assert "unsafe-inline" not in politica
    assert directivas["frame-ancestors"] == "'none'"


def test_it_relaxes_only_styles_on_the_api_docs(client):
    politica = client.get("/api/docs/")["Content-Security-Policy"]
    assert "script-src 'self'" in politica
    assert "style-src 'self' 'unsafe-inline'" in politica


def test_it_shows_the_navigation_entries_that_exist(sesion):
    html = sesion.get(reverse("cuenta-clave")).content.decode()
    assert reverse("cuenta-clave") in html
    assert reverse("cuenta-salir") in html
    # Admin is for staff only.
    assert reverse("admin:index") not in html


def test_it_sends_no_policy_with_api_data(client):
    respuesta = client.get("/api/v1/tickets")
    assert respuesta["Content-Type"].startswith("application/problem+json")
    assert "Content-Security-Policy" not in respuesta
    assert "Content-Security-Policy" in client.get("/oauth/login")


def test_it_explains_a_refusal_on_a_page_of_its_own(sesion):
    # A signed-in user without the vault's permission.
    respuesta = sesion.get("/credenciales/")
    assert respuesta.status_code == 403
    assert "portal.css" in respuesta.content.decode()
    assert respuesta["Content-Security-Policy"]


def test_it_sends_browsers_to_the_icon(client):
    respuesta = client.get("/favicon.ico")
    assert respuesta.status_code == 301
    assert respuesta["Location"].endswith("favicon.svg")
