"""The staff page that manages OAuth clients."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from oauth2_provider.models import get_access_token_model

from sso.models import AplicacionOAuth, Usuario

from .conftest import REDIRECT, autorizar_url, canjear, query

NUEVO = "/oauth/clientes/nuevo"


@pytest.fixture
def staff(db):
    return Usuario.objects.create_user(
        username="staff", email="staff@example.com", password="x", is_staff=True
    )


def _crear(client, **campos):
    datos = {
        "nombre": "Creador de Sitios",
        "redirect_uris": REDIRECT,
        "confidencial": "on",
        **campos,
    }
    return client.post(NUEVO, datos)


def _secretos(response) -> list[str]:
    return [
        str(m).rsplit(" ", 1)[-1]
        for m in get_messages(response.wsgi_request)
        if "%" not in str(m) and ":" in str(m)
    ]


@pytest.mark.parametrize("url", ["/oauth/clientes/", NUEVO, "/oauth/clientes/1/"])
def test_it_sends_anonymous_users_to_sign_in_and_refuses_non_staff(client, ana, url):
    anonimo = client.get(url)
    assert anonimo.status_code == 302
    assert anonimo.headers["Location"].startswith("/oauth/login?next=")

    client.force_login(ana)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("accion", ["rotar", "desactivar", "activar"])
def test_it_refuses_actions_to_non_staff(client, ana, confidencial, accion):
    cliente, _ = confidencial
    client.force_login(ana)

    response = client.post(f"/oauth/clientes/{cliente.pk}/{accion}")

    assert response.status_code == 403
    assert AplicacionOAuth.objects.get().activo


def test_it_creates_a_client_and_shows_its_secret_once(client, staff):
    client.force_login(staff)

    creado = _crear(client)

    cliente = AplicacionOAuth.objects.get()
    assert creado.headers["Location"] == f"/oauth/clientes/{cliente.pk}/"
    primera = client.get(creado.headers["Location"]).content.decode()
    segunda = client.get(creado.headers["Location"]).content.decode()
    secreto = (
        primera.split("copy it now: ")[-1].split("<")[0]
        if "copy it now" in primera
        else (primera.split("cópielo ahora: ")[-1].split("<")[0])
    )
    assert len(secreto) >= 40
    assert secreto not in segunda
    assert cliente.client_id in segunda
    assert secreto not in cliente.client_secret
    assert cliente.client_type == AplicacionOAuth.CLIENT_CONFIDENTIAL
    assert cliente.authorization_grant_type == AplicacionOAuth.GRANT_AUTHORIZATION_CODE
    assert cliente.algorithm == AplicacionOAuth.RS256_ALGORITHM


def test_it_creates_a_public_client_without_a_secret(client, staff):
    client.force_login(staff)

    _crear(client, confidencial="", primera_parte="on")

    cliente = AplicacionOAuth.objects.get()
    assert cliente.client_type == AplicacionOAuth.CLIENT_PUBLIC
    assert cliente.client_secret == ""
    assert cliente.skip_authorization


@pytest.mark.parametrize(
    "uris", ["http://app.example.com/callback", "https://*.example.com/callback", "no es una uri"]
)
def test_it_refuses_redirect_uris_that_are_not_exact_https(client, staff, uris):
    client.force_login(staff)

    response = _crear(client, redirect_uris=uris)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert not AplicacionOAuth.objects.exists()


def test_it_edits_the_redirect_uris(client, staff, confidencial):
    cliente, _ = confidencial
    client.force_login(staff)

    response = client.post(
        f"/oauth/clientes/{cliente.pk}/",
        {"nombre": "Nuevo nombre", "redirect_uris": f"{REDIRECT}\nhttps://otra.example.com/cb"},
    )

    assert response.status_code == 302
    cliente.refresh_from_db()
    assert cliente.name == "Nuevo nombre"
    assert cliente.redirect_uris == f"{REDIRECT} https://otra.example.com/cb"
    assert not cliente.skip_authorization


def test_it_rotates_the_secret_and_the_old_one_stops_working(client, staff, ana, confidencial):
    cliente, viejo = confidencial
    cliente.skip_authorization = True
    cliente.save()
    client.force_login(staff)

    rotado = client.post(f"/oauth/clientes/{cliente.pk}/rotar")

    pagina = client.get(rotado.headers["Location"]).content.decode()
    nuevo = pagina.split("cópielo ahora: ")[-1].split("<")[0]
    assert nuevo != viejo and len(nuevo) >= 40
    app = Client()
    app.force_login(ana)
    code = query(app.get(autorizar_url(cliente)))["code"]
    assert canjear(app, cliente, code, secreto=viejo).status_code == 401
    assert canjear(app, cliente, code, secreto=nuevo).status_code == 200


def test_it_disables_a_client_and_revokes_its_tokens(client, staff, ana, confidencial):
    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    app = Client()
    app.force_login(ana)
    code = query(app.get(autorizar_url(cliente, scope="openid")))["code"]
    tokens = canjear(app, cliente, code, secreto=secreto).json()
    client.force_login(staff)

    client.post(f"/oauth/clientes/{cliente.pk}/desactivar")

    cliente.refresh_from_db()
    assert not cliente.activo
    assert not get_access_token_model().objects.exists()
    userinfo = app.get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert userinfo.status_code == 401
    assert b"Clientes OAuth" in client.get("/oauth/clientes/").content


def test_it_requires_the_csrf_token_on_every_change(staff, confidencial):
    cliente, _ = confidencial
    navegador = Client(enforce_csrf_checks=True)
    navegador.force_login(staff)

    for url in (
        NUEVO,
        f"/oauth/clientes/{cliente.pk}/",
        f"/oauth/clientes/{cliente.pk}/rotar",
        f"/oauth/clientes/{cliente.pk}/desactivar",
    ):
        assert navegador.post(url, {"nombre": "x", "redirect_uris": REDIRECT}).status_code == 403
    cliente.refresh_from_db()
    assert cliente.activo and cliente.name == "Creador de Sitios"
