"""One Bearer class for user tokens, OAuth2 access tokens and JWTs; scopes on OAuth2 tokens."""

import pytest
import time_machine
from django.utils import timezone

from sso import oauth, tokens

from .conftest import canjear, codigo

pytestmark = pytest.mark.urls("tests.oauth.urls_bearer")

URL = "/prueba/perfil"


def _get(api, token):
    return api.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")


def _oauth(client, usuario, cliente, scope):
    client.force_login(usuario)
    code, verifier = codigo(client, cliente, scope=scope)
    client.logout()
    return canjear(client, cliente, code, verifier).json()["access_token"]


def test_it_takes_a_user_token(api, ana):
    _, plano = tokens.token_emitir(usuario=ana)

    response = _get(api, plano)

    assert response.status_code == 200
    assert response.json() == {"id": ana.pk, "tipo": "TokenUsuario"}


@pytest.mark.parametrize("scope", ["profile", "read", "*", "openid read"])
def test_it_takes_an_oauth2_token_with_an_allowed_scope(api, client, ana, publico, scope):
    token = _oauth(client, ana, publico, scope)

    response = _get(api, token)

    assert response.status_code == 200
    assert response.json() == {"id": ana.pk, "tipo": "AccessToken"}


@pytest.mark.parametrize("scope", ["email", "sessions", "openid write"])
def test_it_refuses_an_oauth2_token_without_the_scope(api, client, ana, publico, scope):
    token = _oauth(client, ana, publico, scope)

    response = _get(api, token)

    assert response.status_code == 403


def test_it_refuses_an_expired_or_revoked_oauth2_token(api, client, ana, publico, settings):
    token = _oauth(client, ana, publico, "read")
    with time_machine.travel(
        timezone.now() + timezone.timedelta(seconds=settings.OAUTH2_ACCESS_TOKEN_SECONDS + 1)
    ):
        assert _get(api, token).status_code == 401

    oauth.cliente_desactivar(cliente=publico)

    assert _get(api, token).status_code == 401


def test_it_refuses_the_oauth2_token_of_an_inactive_user(api, client, ana, publico):
    token = _oauth(client, ana, publico, "read")
    ana.is_active = False
    ana.save()

    assert _get(api, token).status_code == 401


@pytest.mark.parametrize(
    "raw",
    [
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJh",
        "cualquier-cosa",
        "1|secreto-equivocado",
    ],
)
def test_it_refuses_unknown_tokens_with_401(api, ana, raw):
    response = _get(api, raw)

    assert response.status_code == 401


def test_it_asks_for_credentials_without_a_token(api):
    assert api.get(URL).status_code == 401


def test_it_looks_an_oauth2_token_up_in_one_query(api, client, ana, publico):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = _oauth(client, ana, publico, "read")

    with CaptureQueriesContext(connection) as consultas:
        assert _get(api, token).status_code == 200

    assert len(consultas) == 1


def test_it_knows_no_scope_outside_the_list():
    from sso.api.scopes import requiere_scope

    with pytest.raises(ValueError):
        requiere_scope("admin")
