import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from sso import oauth
from sso.models import Usuario

REDIRECT = "https://app.example.com/callback"
PASSWORD = "clave-de-prueba-2026"


@pytest.fixture
def ana(db):
    return Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        phone="+50688887777",
        nombre="Ana Example",
        password=PASSWORD,
    )


@pytest.fixture
def publico(db):
    """A first-party browser app: no secret, PKCE required, no consent page."""
    cliente, _ = oauth.cliente_crear(
        nombre="Panel",
        redirect_uris=REDIRECT,
        confidencial=False,
        primera_parte=True,
        creado_por=None,
    )
    return cliente


@pytest.fixture
def confidencial(db):
    """A third-party web app with a server: (client, secret); its users are asked consent."""
    return oauth.cliente_crear(
        nombre="Creador de Sitios",
        redirect_uris=REDIRECT,
        confidencial=True,
        primera_parte=False,
        creado_por=None,
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def autorizar_url(cliente, **extra) -> str:
    params = {
        "client_id": cliente.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "xyz123",
        **extra,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query(response) -> dict:
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def codigo(client, cliente, *, scope="openid profile email", pkce_par=None) -> tuple[str, str]:
    """Sign-in already done (force_login): a code and its verifier for a first-party client."""
    verifier, challenge = pkce_par or pkce()
    response = client.get(
        autorizar_url(cliente, scope=scope, code_challenge=challenge, code_challenge_method="S256")
    )
    assert response.status_code == 302, response.content
    assert response.headers["Location"].startswith(REDIRECT)
    return query(response)["code"], verifier


def canjear(client, cliente, code, verifier=None, secreto=None):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": cliente.client_id,
    }
    if verifier:
        data["code_verifier"] = verifier
    if secreto:
        data["client_secret"] = secreto
    return client.post("/oauth/token", data)


def refrescar(client, cliente, refresh_token, secreto=None):
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": cliente.client_id,
    }
    if secreto:
        data["client_secret"] = secreto
    return client.post("/oauth/token", data)


@pytest.fixture(autouse=True)
def _contadores_limpios():
    """Lockout counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
