"""The login API (envelope D) with the three kinds of Bearer token: user tokens, OAuth2 access
tokens (limited by their scopes) and gettoken's JWTs; OAuth2 grants as app sessions; and the
JWKS that verifies gettoken's JWTs."""

import json

import jwt as pyjwt
import pytest
from django.conf import settings

from sso import tokens
from sso.jwt import kid_de
from sso.models import OperadorVirtual, Usuario

from .conftest import PASSWORD, canjear, codigo, refrescar

USER = "/api/user"
PROFILE = "/api/auth/profile"
SESSIONS = "/api/app-sessions"
LOGOUT = "/api/auth/logout"


@pytest.fixture
def beto(db):
    return Usuario.objects.create_user(username="beto", email="beto@example.com", password=PASSWORD)


def _oauth(client, usuario, cliente, scope) -> dict:
    """The token response of a whole authorization-code exchange (access and refresh)."""
    client.force_login(usuario)
    code, verifier = codigo(client, cliente, scope=scope)
    client.logout()
    respuesta = canjear(client, cliente, code, verifier)
    assert respuesta.status_code == 200, respuesta.content
    return respuesta.json()


def _get(api, url, token):
    return api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def jwt_de_ana(api, ana):
    ana.operador_virtual = OperadorVirtual.objects.create(alias="acme", nombre="ACME")
    ana.save()
    respuesta = api.post(
        "/v2/auth/gettoken",
        json.dumps(
            {"username": "ana@example.com", "password": PASSWORD, "virtual_operator": "acme"}
        ),
        content_type="application/json",
    )
    assert respuesta.status_code == 200, respuesta.content
    return respuesta.json()["ResultData"]["access_token"]


# --- JWKS ---------------------------------------------------------------------------------------


def test_the_jwks_verifies_a_gettoken_jwt(client, jwt_de_ana, ana):
    """What an integration does: fetch the portal's JWKS, pick the key by the JWT's `kid`."""
    jwks = client.get("/oauth/jwks").json()
    kid = pyjwt.get_unverified_header(jwt_de_ana)["kid"]
    claves = {clave.key_id: clave for clave in pyjwt.PyJWKSet.from_dict(jwks).keys}

    assert kid == kid_de(settings.OIDC_RSA_PRIVATE_KEY)
    claims = pyjwt.decode(
        jwt_de_ana,
        claves[kid].key,
        algorithms=["RS256"],
        audience=settings.JWT_AUDIENCE,
        issuer=settings.JWT_ISSUER,
    )
    assert claims["sub"] == str(ana.pk)


# --- /api/user with each kind of Bearer token ---------------------------------------------------


def test_api_user_takes_a_user_token(api, ana):
    _, plano = tokens.token_emitir(usuario=ana)

    response = _get(api, USER, plano)

    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == ana.pk


@pytest.mark.parametrize("scope", ["profile", "read", "*"])
def test_api_user_takes_an_oauth2_token_with_profile_or_read(api, client, ana, publico, scope):
    token = _oauth(client, ana, publico, scope)["access_token"]

    for url in (USER, PROFILE):
        response = _get(api, url, token)
        assert response.status_code == 200, response.content
        assert response.json()["success"] is True


@pytest.mark.parametrize("scope", ["email", "sessions", "openid write"])
def test_api_user_refuses_an_oauth2_token_without_the_profile_scope(
    api, client, ana, publico, scope
):
    token = _oauth(client, ana, publico, scope)["access_token"]

    response = _get(api, USER, token)

    assert response.status_code == 403
    assert response.json()["success"] is False


def test_api_user_takes_a_jwt(api, ana, jwt_de_ana):
    response = _get(api, USER, jwt_de_ana)

    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == ana.pk


def test_app_sessions_need_the_sessions_scope(api, client, ana, publico):
    sin = _oauth(client, ana, publico, "profile")["access_token"]
    con = _oauth(client, ana, publico, "sessions")["access_token"]

    assert _get(api, SESSIONS, sin).status_code == 403
    assert _get(api, SESSIONS, con).status_code == 200
    registro = api.post(
        f"{SESSIONS}/register",
        {"app_name": "Panel"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {sin}",
    )
    assert registro.status_code == 403


# --- Logout -------------------------------------------------------------------------------------


def test_logout_with_an_oauth2_token_revokes_it_and_its_refresh_token(api, client, ana, publico):
    otro = _oauth(client, ana, publico, "profile")
    token = _oauth(client, ana, publico, "profile")

    response = api.post(
        LOGOUT, {}, format="json", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}"
    )

    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Sesión cerrada", "data": None}
    assert _get(api, USER, token["access_token"]).status_code == 401
    assert refrescar(client, publico, token["refresh_token"]).status_code == 400
    assert _get(api, USER, otro["access_token"]).status_code == 200  # only the one in use


# --- OAuth2 grants as app sessions --------------------------------------------------------------


def test_app_sessions_list_and_end_an_oauth2_grant(api, client, ana, beto, publico, confidencial):
    tercero, _ = confidencial
    _, propio = tokens.token_emitir(usuario=ana)
    panel = _oauth(client, ana, publico, "profile")
    _oauth(client, ana, publico, "profile")  # a second sign-in of the same app: one item
    refrescado = refrescar(client, publico, panel["refresh_token"]).json()
    _, de_beto = tokens.token_emitir(usuario=beto)

    listado = _get(api, SESSIONS, propio).json()["data"]

    oauth = [sesion for sesion in listado if sesion["type"] == "oauth"]
    assert [(s["id"], s["app_name"], s["is_active"]) for s in oauth] == [
        (f"oauth-{publico.pk}", "Panel", True)
    ]
    assert oauth[0]["created_at"] <= oauth[0]["last_used_at"]
    assert _get(api, SESSIONS, de_beto).json()["data"][0]["type"] == "token"  # none of Ana's
    # Beto cannot end Ana's grant; nor can anyone end a grant that does not exist.
    for token, id_sesion in ((de_beto, f"oauth-{publico.pk}"), (propio, f"oauth-{tercero.pk}")):
        ajena = api.delete(f"{SESSIONS}/{id_sesion}", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert ajena.status_code == 404
    assert _get(api, USER, refrescado["access_token"]).status_code == 200

    fin = api.delete(f"{SESSIONS}/oauth-{publico.pk}", HTTP_AUTHORIZATION=f"Bearer {propio}")

    assert fin.json() == {"success": True, "message": "Sesión terminada", "data": None}
    assert _get(api, USER, refrescado["access_token"]).status_code == 401
    assert refrescar(client, publico, refrescado["refresh_token"]).status_code == 400
    assert [s["type"] for s in _get(api, SESSIONS, propio).json()["data"]] == ["token"]
    again = api.delete(f"{SESSIONS}/oauth-{publico.pk}", HTTP_AUTHORIZATION=f"Bearer {propio}")
    assert again.status_code == 404


def test_disabling_a_user_revokes_their_oauth2_tokens(api, client, ana, publico):
    token = _oauth(client, ana, publico, "profile")
    ana.is_active = False
    ana.save()
    ana.is_active = True
    ana.save()

    assert _get(api, USER, token["access_token"]).status_code == 401
    assert refrescar(client, publico, token["refresh_token"]).status_code == 400
