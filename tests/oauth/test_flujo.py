"""The whole authorization-code + PKCE flow as a third-party app and a browser run it: the app
with a real OAuth2 client library (Authlib), the browser as a `requests.Session` that signs in
through the HTML form and consents; the id_token is verified against the JWKS with PyJWT."""

import logging
import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings

from sso.jwt import kid_de

from .conftest import PASSWORD, REDIRECT

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _campos_ocultos(html: str) -> dict:
    campos = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {nombre: unescape(valor) for nombre, valor in campos}


def _seguir_hasta_la_app(navegador, base, response):
    """Follow the portal's own redirects; stop at the first one that leaves it."""
    while response.status_code in (301, 302, 303):
        destino = urljoin(response.url, response.headers["Location"])
        if not destino.startswith(base):
            return destino
        response = navegador.get(destino, allow_redirects=False)
    return response


@pytest.mark.django_db(transaction=True)
def test_it_signs_a_user_in_with_authorization_code_and_pkce(
    request, live_server, ana, confidencial, caplog
):
    caplog.set_level(logging.DEBUG)
    base = live_server.url
    cliente, secreto = confidencial
    app = OAuth2Session(
        client_id=cliente.client_id,
        client_secret=secreto,
        scope="openid profile email",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    # A live-server thread left holding a kept-alive connection keeps its database session.
    request.addfinalizer(app.close)
    verifier = generate_token(48)
    url, state = app.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    navegador = requests.Session()
    request.addfinalizer(navegador.close)
    navegador.headers["Accept-Language"] = "en"

    # Not signed in: the portal's login page, with CSRF.
    pagina = _seguir_hasta_la_app(navegador, base, navegador.get(url, allow_redirects=False))
    assert pagina.status_code == 200 and "Sign in" in pagina.text
    token_csrf = CSRF.search(pagina.text).group(1)
    enviada = navegador.post(
        pagina.url,
        data={
            "csrfmiddlewaretoken": token_csrf,
            "login": "ana@example.com",
            "password": PASSWORD,
            "next": _campos_ocultos(pagina.text)["next"],
        },
        allow_redirects=False,
    )
    # Signed in: back to the authorization request, which asks for consent (third party).
    consentimiento = _seguir_hasta_la_app(navegador, base, enviada)
    assert consentimiento.status_code == 200
    assert "Creador de Sitios" in consentimiento.text
    campos = _campos_ocultos(consentimiento.text)
    campos["allow"] = "Authorize"
    callback = _seguir_hasta_la_app(
        navegador, base, navegador.post(consentimiento.url, data=campos, allow_redirects=False)
    )
    assert callback.startswith(REDIRECT + "?")
    parametros = parse_qs(urlparse(callback).query)
    assert parametros["state"] == [state]

    token = app.fetch_token(
        f"{base}/oauth/token", authorization_response=callback, code_verifier=verifier
    )

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 15724800
    assert token["refresh_token"]
    # The id_token, verified as a relying party does: discovery, then the JWKS.
    descubrimiento = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    assert descubrimiento["issuer"] == settings.OIDC_ISSUER
    assert descubrimiento["response_types_supported"] == ["code"]
    assert descubrimiento["code_challenge_methods_supported"] == ["S256"]
    jwks_uri = descubrimiento["jwks_uri"].replace(settings.OIDC_ISSUER, base)
    claves = jwt.PyJWKSet.from_dict(requests.get(jwks_uri, timeout=10).json())
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    privada = load_pem_private_key(settings.OIDC_RSA_PRIVATE_KEY.encode(), password=None)
    assert kid == kid_de(privada.public_key())
    clave = next(k for k in claves.keys if k.key_id == kid)
    claims = jwt.decode(
        token["id_token"],
        clave.key,
        algorithms=["RS256"],
        audience=cliente.client_id,
        issuer=settings.OIDC_ISSUER,
    )
    assert claims["sub"] == str(ana.pk)
    assert claims["email"] == "ana@example.com"
    assert claims["name"] == "Ana Example"
    # The access token opens userinfo; a refresh rotates it.
    perfil = app.get(f"{base}/oauth/userinfo").json()
    assert perfil["email"] == "ana@example.com"
    nuevo = app.refresh_token(f"{base}/oauth/token")
    assert nuevo["refresh_token"] != token["refresh_token"]

    # Nothing secret reached the logs.
    registro = "\n".join(r.getMessage() for r in caplog.records)
    for secreto_visto in (
        secreto,
        PASSWORD,
        parametros["code"][0],
        token["access_token"],
        token["refresh_token"],
        nuevo["access_token"],
        verifier,
    ):
        assert secreto_visto not in registro


@pytest.mark.django_db(transaction=True)
def test_it_exchanges_a_code_once_under_concurrent_requests(live_server, postgres, ana, publico):
    from concurrent.futures import ThreadPoolExecutor

    from django.test import Client

    from .conftest import codigo

    navegador = Client()
    navegador.force_login(ana)
    code, verifier = codigo(navegador, publico)
    datos = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
             "client_id": publico.client_id, "code_verifier": verifier}  # fmt: skip

    with ThreadPoolExecutor(max_workers=6) as pool:
        respuestas = list(
            pool.map(
                lambda _: requests.post(f"{live_server.url}/oauth/token", data=datos, timeout=60),
                range(6),
            )
        )

    estados = sorted(r.status_code for r in respuestas)
    assert estados.count(200) == 1
    assert set(estados) <= {200, 400}
    from oauth2_provider.models import get_access_token_model

    # Whichever won, a replay was seen: no token issued from the code survives.
    assert get_access_token_model().objects.filter(user=ana).count() <= 1
