"""The authorization server's protocol rules, through Django's test client."""

from urllib.parse import quote

import pytest
import time_machine
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from .conftest import REDIRECT, autorizar_url, canjear, codigo, pkce, query, refrescar

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


def userinfo(client, access_token):
    return client.get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_it_issues_tokens_for_a_code_with_the_seeds_lifetime(client, ana, publico):
    client.force_login(ana)
    code, verifier = codigo(client, publico)

    response = canjear(client, publico, code, verifier)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15724800
    assert body["refresh_token"] and body["id_token"]
    assert userinfo(client, body["access_token"]).json()["email"] == "ana@example.com"


def test_it_echoes_state_and_names_the_issuer(client, ana, publico, settings):
    client.force_login(ana)
    _, challenge = pkce()

    response = client.get(
        autorizar_url(publico, code_challenge=challenge, code_challenge_method="S256")
    )

    params = query(response)
    assert params["state"] == "xyz123"
    assert params["iss"] == settings.OIDC_ISSUER


def test_it_requires_pkce_from_public_clients(client, ana, publico):
    client.force_login(ana)

    response = client.get(autorizar_url(publico))

    assert response.status_code == 302
    assert query(response)["error"] == "invalid_request"
    assert not Grant.objects.exists()


def test_it_refuses_the_plain_pkce_method(client, ana, publico):
    client.force_login(ana)

    response = client.get(
        autorizar_url(publico, code_challenge="a" * 50, code_challenge_method="plain")
    )

    assert query(response)["error"] == "invalid_request"
    assert not Grant.objects.exists()


def test_it_accepts_confidential_clients_with_or_without_pkce(client, ana, confidencial):
    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    client.force_login(ana)

    sin_pkce = query(client.get(autorizar_url(cliente)))["code"]
    assert canjear(client, cliente, sin_pkce, secreto=secreto).status_code == 200

    verifier, challenge = pkce()
    con_pkce = query(
        client.get(autorizar_url(cliente, code_challenge=challenge, code_challenge_method="S256"))
    )["code"]
    equivocado = canjear(client, cliente, con_pkce, "x" * 50, secreto=secreto)
    assert equivocado.status_code == 400
    assert equivocado.json()["error"] == "invalid_grant"
    assert canjear(client, cliente, con_pkce, verifier, secreto=secreto).status_code == 200


def test_it_refuses_a_confidential_client_with_a_wrong_secret(client, ana, confidencial):
    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    client.force_login(ana)
    code = query(client.get(autorizar_url(cliente)))["code"]

    response = canjear(client, cliente, code, secreto=secreto + "x")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("response_type", ["token", "id_token", "id_token token", "code token"])
def test_it_refuses_implicit_and_hybrid_response_types(client, ana, publico, response_type):
    client.force_login(ana)
    _, challenge = pkce()

    response = client.get(
        autorizar_url(
            publico,
            response_type=response_type,
            code_challenge=challenge,
            code_challenge_method="S256",
            scope="openid",
        )
    )

    assert response.status_code in (302, 400)
    if response.status_code == 302:
        location = response.headers["Location"]
        assert "access_token" not in location and "id_token" not in location
        assert "error=" in location
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit"])
def test_it_refuses_other_grants_at_the_token_endpoint(client, ana, confidencial, grant_type):
    cliente, secreto = confidencial

    response = client.post(
        "/oauth/token",
        {
            "grant_type": grant_type,
            "username": "ana@example.com",
            "password": "x",
            "client_id": cliente.client_id,
            "client_secret": secreto,
        },
    )

    assert response.status_code in (400, 401)
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.net/callback",
        REDIRECT + "/",
        REDIRECT + "?x=1",
        "http://app.example.com/callback",
    ],
)
def test_it_shows_an_error_page_and_does_not_redirect_on_a_wrong_redirect_uri(
    client, ana, publico, redirect_uri
):
    _, challenge = pkce()
    url = autorizar_url(publico, code_challenge=challenge, code_challenge_method="S256")
    url = url.replace(quote(REDIRECT, safe=""), quote(redirect_uri, safe=""))

    anonimo = client.get(url)
    client.force_login(ana)
    firmado = client.get(url)

    for response in (anonimo, firmado):
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert b"invalid_request" in response.content or b"redirect" in response.content.lower()
    assert not Grant.objects.exists()


def test_it_shows_an_error_page_for_an_unknown_or_disabled_client(client, ana, publico):
    from sso import oauth

    oauth.cliente_desactivar(cliente=publico)
    client.force_login(ana)
    _, challenge = pkce()

    response = client.get(
        autorizar_url(publico, code_challenge=challenge, code_challenge_method="S256")
    )

    assert response.status_code in (400, 401)
    assert "Location" not in response.headers


def test_it_refuses_a_replayed_code_and_revokes_the_tokens_issued_from_it(client, ana, publico):
    client.force_login(ana)
    code, verifier = codigo(client, publico)
    primera = canjear(client, publico, code, verifier).json()

    segunda = canjear(client, publico, code, verifier)

    assert segunda.status_code == 400
    assert segunda.json()["error"] == "invalid_grant"
    assert userinfo(client, primera["access_token"]).status_code == 401
    refresco = refrescar(client, publico, primera["refresh_token"])
    assert refresco.status_code == 400
    assert not AccessToken.objects.exists()


def test_it_refuses_a_code_older_than_60_seconds(client, ana, publico):
    client.force_login(ana)
    with time_machine.travel(timezone.now(), tick=False) as viaje:
        code, verifier = codigo(client, publico)
        viaje.shift(61)

        response = canjear(client, publico, code, verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_accepts_a_code_within_60_seconds(client, ana, publico):
    client.force_login(ana)
    with time_machine.travel(timezone.now(), tick=False) as viaje:
        code, verifier = codigo(client, publico)
        viaje.shift(59)

        assert canjear(client, publico, code, verifier).status_code == 200


def test_it_rotates_refresh_tokens_and_revokes_the_family_on_reuse(client, ana, publico):
    client.force_login(ana)
    code, verifier = codigo(client, publico)
    primero = canjear(client, publico, code, verifier).json()

    segundo = refrescar(client, publico, primero["refresh_token"]).json()
    assert segundo["refresh_token"] != primero["refresh_token"]
    assert userinfo(client, primero["access_token"]).status_code == 401
    assert userinfo(client, segundo["access_token"]).status_code == 200
    tercero = refrescar(client, publico, segundo["refresh_token"]).json()

    reuso = refrescar(client, publico, primero["refresh_token"])

    assert reuso.status_code == 400
    assert reuso.json()["error"] == "invalid_grant"
    assert userinfo(client, tercero["access_token"]).status_code == 401
    assert refrescar(client, publico, tercero["refresh_token"]).status_code == 400


def test_it_refuses_refresh_past_the_absolute_lifetime(client, ana, publico, settings):
    settings.OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS = 3600
    client.force_login(ana)
    with time_machine.travel(timezone.now(), tick=False) as viaje:
        code, verifier = codigo(client, publico)
        tokens = canjear(client, publico, code, verifier).json()
        viaje.shift(1800)
        tokens = refrescar(client, publico, tokens["refresh_token"]).json()
        viaje.shift(1801)

        response = refrescar(client, publico, tokens["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_it_refuses_refresh_past_the_idle_lifetime(client, ana, publico, settings):
    client.force_login(ana)
    with time_machine.travel(timezone.now(), tick=False) as viaje:
        code, verifier = codigo(client, publico)
        tokens = canjear(client, publico, code, verifier).json()
        viaje.shift(
            settings.OAUTH2_ACCESS_TOKEN_SECONDS + settings.OAUTH2_REFRESH_TOKEN_IDLE_SECONDS
        )

        response = refrescar(client, publico, tokens["refresh_token"])

    assert response.status_code == 400


def test_it_revokes_access_and_refresh_tokens(client, ana, confidencial):
    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    client.force_login(ana)
    code = query(client.get(autorizar_url(cliente, scope="openid")))["code"]
    tokens = canjear(client, cliente, code, secreto=secreto).json()

    response = client.post(
        "/oauth/revoke",
        {
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            "client_id": cliente.client_id,
            "client_secret": secreto,
        },
    )

    assert response.status_code == 200
    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert refrescar(client, cliente, tokens["refresh_token"], secreto).status_code == 400


def test_it_introspects_only_the_callers_own_tokens(client, ana, confidencial, publico):
    from sso import oauth

    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    otro, otro_secreto = oauth.cliente_crear(
        nombre="Otro",
        redirect_uris=REDIRECT,
        confidencial=True,
        primera_parte=True,
        creado_por=None,
    )
    client.force_login(ana)
    code = query(client.get(autorizar_url(cliente, scope="read profile")))["code"]
    tokens = canjear(client, cliente, code, secreto=secreto).json()

    propio = client.post(
        "/oauth/introspect",
        {"token": tokens["access_token"]},
        HTTP_AUTHORIZATION=_basic(cliente.client_id, secreto),
    )
    ajeno = client.post(
        "/oauth/introspect",
        {"token": tokens["access_token"]},
        HTTP_AUTHORIZATION=_basic(otro.client_id, otro_secreto),
    )
    anonimo = client.post("/oauth/introspect", {"token": tokens["access_token"]})
    publico_sin_secreto = client.post(
        "/oauth/introspect",
        {"token": tokens["access_token"], "client_id": publico.client_id, "client_secret": ""},
    )
    desconocido = client.post(
        "/oauth/introspect",
        {"token": "nada"},
        HTTP_AUTHORIZATION=_basic(cliente.client_id, secreto),
    )

    assert propio.status_code == 200
    datos = propio.json()
    assert datos["active"] is True
    assert datos["scope"] == "read profile"
    assert datos["client_id"] == cliente.client_id
    assert datos["sub"] == str(ana.pk)
    assert ajeno.json() == {"active": False}
    assert anonimo.status_code == 401
    assert publico_sin_secreto.status_code == 401
    assert desconocido.json() == {"active": False}


def _basic(client_id, secreto):
    import base64
    from urllib.parse import quote

    credenciales = f"{quote(client_id, safe='')}:{quote(secreto, safe='')}".encode()
    return "Basic " + base64.b64encode(credenciales).decode()


def test_it_stores_tokens_codes_and_secrets_only_hashed(client, ana, confidencial):
    cliente, secreto = confidencial
    cliente.skip_authorization = True
    cliente.save()
    client.force_login(ana)
    code = query(client.get(autorizar_url(cliente, scope="openid")))["code"]
    tokens = canjear(client, cliente, code, secreto=secreto).json()

    cliente.refresh_from_db()
    assert secreto not in cliente.client_secret
    assert cliente.client_secret.startswith(("argon2", "md5", "pbkdf2"))
    access = AccessToken.objects.get()
    refresh = RefreshToken.objects.get()
    assert access.token == "" and tokens["access_token"] not in access.token_checksum
    assert refresh.token == ""
    from sso.models import CanjeCodigo

    assert CanjeCodigo.objects.get().codigo_hash != code
    assert not Grant.objects.exists()


def test_it_refuses_the_tokens_of_a_disabled_client_and_of_an_inactive_user(client, ana, publico):
    from sso import oauth

    client.force_login(ana)
    code, verifier = codigo(client, publico)
    tokens = canjear(client, publico, code, verifier).json()
    ana.is_active = False
    ana.save()
    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert refrescar(client, publico, tokens["refresh_token"]).status_code == 400
    ana.is_active = True
    ana.save()

    oauth.cliente_desactivar(cliente=publico)

    assert userinfo(client, tokens["access_token"]).status_code == 401
    assert refrescar(client, publico, tokens["refresh_token"]).status_code in (400, 401)


def test_it_releases_claims_by_scope(client, ana, publico):
    client.force_login(ana)
    code, verifier = codigo(client, publico, scope="openid email")
    tokens = canjear(client, publico, code, verifier).json()

    claims = userinfo(client, tokens["access_token"]).json()

    assert claims["sub"] == str(ana.pk)
    assert claims["email"] == "ana@example.com"
    assert "name" not in claims and "phone_number" not in claims


def test_it_cleans_expired_codes_and_tokens_on_schedule(client, ana, publico, settings):
    from sso.models import CanjeCodigo
    from sso.tasks import limpiar_tokens_oauth_task

    assert "limpiar-tokens-oauth" in settings.CELERY_BEAT_SCHEDULE
    client.force_login(ana)
    with time_machine.travel(timezone.now(), tick=False) as viaje:
        codigo(client, publico)  # never exchanged
        code, verifier = codigo(client, publico)
        canjear(client, publico, code, verifier)
        viaje.shift(
            settings.OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS
            + settings.OAUTH2_ACCESS_TOKEN_SECONDS
            + settings.OAUTH2_REFRESH_TOKEN_IDLE_SECONDS
            + 1
        )

        limpiar_tokens_oauth_task()

    assert not Grant.objects.exists()
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.exists()
    assert not CanjeCodigo.objects.exists()


def test_a_code_already_exchanged_has_no_challenge_and_fails_as_a_bad_grant(publico):
    """The loser of two concurrent exchanges asks for the challenge of a deleted code: it must
    get none (an invalid grant, 400), not an error on the missing row (500)."""
    from oauthlib.common import Request

    from sso.oauth import ValidadorOAuth2

    peticion = Request("https://portal.example.com/oauth/token")
    peticion.client = publico
    validador = ValidadorOAuth2()

    assert validador.get_code_challenge("ya-canjeado", peticion) is None
    assert validador.get_code_challenge_method("ya-canjeado", peticion) is None
