"""User tokens (sso/tokens.py), PIN devices (sso/dispositivos.py) and the Bearer class."""

import hmac
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from sso import tokens
from sso.api.bearer import BearerAuthentication
from sso.dispositivos import (
    dispositivo_cambiar_pin,
    dispositivo_registrar,
    dispositivo_revocar,
    dispositivo_verificar_pin,
)
from sso.models import Sistema, TokenUsuario, Usuario
from sso.tokens import (
    TokenRevocado,
    parece_token_usuario,
    token_autenticar,
    token_emitir,
    token_renovar,
    token_revocar,
    tokens_podar,
    tokens_revocar_usuario,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def usuario(db):
    return Usuario.objects.create_user(username="ana", email="ana@example.com", password="x")


@pytest.fixture
def emitido(usuario):
    return token_emitir(usuario=usuario, sistema=Sistema.objects.create(alias="fp", nombre="FP"))


# --- tokens ----------------------------------------------------------------------------------


def test_it_issues_a_token_stored_only_as_a_hash(emitido):
    token, raw = emitido
    ident, _, secret = raw.partition("|")
    assert int(ident) == token.pk
    assert len(secret) >= 40
    assert secret not in token.secreto_hash
    assert token_autenticar(raw) == token


@override_settings(USER_TOKEN_LIFETIME_HOURS=2)
def test_it_expires_tokens_after_their_lifetime(usuario):
    token, raw = token_emitir(usuario=usuario)
    assert timedelta(hours=2) - (token.expira - timezone.now()) < timedelta(minutes=1)
    TokenUsuario.objects.filter(pk=token.pk).update(expira=timezone.now() - timedelta(seconds=1))
    assert token_autenticar(raw) is None


def test_it_refuses_revoked_tokens(emitido):
    token, raw = emitido
    token_revocar(token=token)
    assert token_autenticar(raw) is None


def test_it_refuses_tokens_of_inactive_users(emitido, usuario):
    Usuario.objects.filter(pk=usuario.pk).update(is_active=False)
    assert token_autenticar(emitido[1]) is None


def test_it_revokes_every_token_of_a_user(usuario):
    raws = [token_emitir(usuario=usuario)[1] for _ in range(3)]
    assert tokens_revocar_usuario(usuario=usuario) == 3
    assert all(token_autenticar(raw) is None for raw in raws)


def test_it_renews_a_token_and_kills_the_old_one(emitido):
    token, raw = emitido
    nuevo, nuevo_raw = token_renovar(token=token, ip="192.0.2.1")
    assert token_autenticar(raw) is None
    assert token_autenticar(nuevo_raw) == nuevo
    assert nuevo.sistema == token.sistema and nuevo.ip == "192.0.2.1"
    with pytest.raises(TokenRevocado):
        token_renovar(token=token)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "|",
        "1|",
        "|secret",
        "abc|secret",
        "-1|secret",
        " 1|secret",
        "1" * 19 + "|secret",
        "1|" + "x" * 201,
        "²|secret",  # a Unicode digit int() does not take
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ],
)
def test_it_refuses_wrong_formats_without_error(emitido, raw):
    assert token_autenticar(raw) is None


def test_it_recognises_only_the_user_token_form():
    assert parece_token_usuario("5|abc")
    assert not parece_token_usuario("eyJhbGciOiJIUzI1NiJ9.e30.sig")
    assert not parece_token_usuario("5|")
    assert not parece_token_usuario("x|abc")


def test_it_compares_in_constant_time_even_for_unknown_ids(emitido, monkeypatch):
    compared = []
    real = hmac.compare_digest

    def counting(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    token, raw = emitido
    assert token_autenticar(f"{token.pk + 1000}|{raw.split('|')[1]}") is None
    assert token_autenticar(f"{token.pk}|wrong") is None
    assert len(compared) == 2  # the missing row costs the same comparison as a wrong secret


def test_it_touches_ultimo_uso_at_most_once_a_minute(emitido, django_assert_num_queries):
    token, raw = emitido
    token_autenticar(raw)
    token.refresh_from_db()
    primero = token.ultimo_uso
    assert primero is not None
    with django_assert_num_queries(1):  # the SELECT only, no UPDATE
        token_autenticar(raw)
    token.refresh_from_db()
    assert token.ultimo_uso == primero
    hace_rato = timezone.now() - timedelta(minutes=2)
    TokenUsuario.objects.filter(pk=token.pk).update(ultimo_uso=hace_rato)
    token_autenticar(raw)
    token.refresh_from_db()
    assert token.ultimo_uso > hace_rato


def test_it_prunes_old_expired_and_revoked_tokens(usuario):
    viejo, _ = token_emitir(usuario=usuario)
    revocado, _ = token_emitir(usuario=usuario)
    vivo, _ = token_emitir(usuario=usuario)
    hace = timezone.now() - timedelta(days=40)
    TokenUsuario.objects.filter(pk=viejo.pk).update(expira=hace)
    TokenUsuario.objects.filter(pk=revocado.pk).update(revocado=hace)
    assert tokens_podar(dias=30) == 2
    assert list(TokenUsuario.objects.all()) == [vivo]


@pytest.mark.django_db(transaction=True)
def test_it_gives_one_new_token_when_two_renewals_race(usuario):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite has no SELECT … FOR UPDATE and serialises writers itself; the row lock "
            "is tested on PostgreSQL (set DATABASE_URL)"
        )
    token, _ = token_emitir(usuario=usuario)
    barrier = threading.Barrier(2)
    results = []

    def renew():
        try:
            barrier.wait()
            results.append(token_renovar(token=token))
        except TokenRevocado:
            results.append("revocado")
        finally:
            connection.close()

    threads = [threading.Thread(target=renew) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(type, results), key=str) == sorted([tuple, str], key=str)
    assert TokenUsuario.objects.filter(usuario=usuario, revocado__isnull=True).count() == 1


# --- BearerAuthentication: user tokens ------------------------------------------------------


def _request(value=None):
    extra = {"HTTP_AUTHORIZATION": value} if value is not None else {}
    return APIRequestFactory().get("/", **extra)


def test_it_authenticates_a_user_token_bearer(emitido, usuario):
    token, raw = emitido
    assert BearerAuthentication().authenticate(_request(f"Bearer {raw}")) == (
        usuario,
        token,
    )


@pytest.mark.parametrize("value", [None, "", "Basic abc", "Bearer", "Bearer x y"])
def test_it_leaves_other_authorizations_to_other_classes(value):
    assert BearerAuthentication().authenticate(_request(value)) is None


def test_it_rejects_a_wrong_or_dead_user_token(emitido):
    token, raw = emitido
    auth = BearerAuthentication()
    with pytest.raises(exceptions.AuthenticationFailed):
        auth.authenticate(_request(f"Bearer {token.pk}|wrong"))
    token_revocar(token=token)
    with pytest.raises(exceptions.AuthenticationFailed):
        auth.authenticate(_request(f"Bearer {raw}"))
    assert auth.authenticate_header(_request()) == 'Bearer realm="api"'


# --- devices ---------------------------------------------------------------------------------


@pytest.fixture
def movil(usuario):
    return dispositivo_registrar(usuario=usuario, nombre="Teléfono", pin="1234")


@pytest.mark.parametrize("pin", ["123", "12a4", "1" * 13, ""])
def test_it_refuses_pins_that_are_not_4_to_12_digits(usuario, pin):
    with pytest.raises(ValidationError):
        dispositivo_registrar(usuario=usuario, nombre="x", pin=pin)


def test_it_stores_the_pin_hashed_and_checks_it(movil):
    assert "1234" not in movil.pin_hash
    assert dispositivo_verificar_pin(dispositivo=movil, pin="1234")
    assert not dispositivo_verificar_pin(dispositivo=movil, pin="9999")


@override_settings(PIN_MAX_FALLOS=3)
def test_it_locks_a_device_after_wrong_pins_in_a_row(movil):
    assert not dispositivo_verificar_pin(dispositivo=movil, pin="0000")
    assert not dispositivo_verificar_pin(dispositivo=movil, pin="0000")
    assert dispositivo_verificar_pin(dispositivo=movil, pin="1234")  # resets the count
    for _ in range(3):
        assert not dispositivo_verificar_pin(dispositivo=movil, pin="0000")
    movil.refresh_from_db()
    assert movil.bloqueado is not None
    assert not dispositivo_verificar_pin(dispositivo=movil, pin="1234")
    dispositivo_cambiar_pin(dispositivo=movil, pin="5678")  # unlocks
    assert dispositivo_verificar_pin(dispositivo=movil, pin="5678")


def test_it_revokes_a_device_and_its_tokens(movil, usuario):
    _, raw = token_emitir(usuario=usuario, dispositivo=movil)
    dispositivo_revocar(dispositivo=movil)
    assert token_autenticar(raw) is None
    assert not dispositivo_verificar_pin(dispositivo=movil, pin="1234")


def test_the_hand_written_statements_name_every_column_of_the_token():
    """_ENTRAR_SQL and _RENOVAR_SQL insert a token by hand (PostgreSQL): a field added to the
    model must be added to them too, or sign-ins would fail only in production."""
    import re

    from sso import tokens

    columnas = {f.column for f in TokenUsuario._meta.concrete_fields} - {"id"}
    for sql in (tokens._ENTRAR_SQL, tokens._RENOVAR_SQL):
        insertadas = re.search(r"INSERT INTO sso_tokenusuario\s*\(([^)]*)\)", sql).group(1)
        assert {c.strip() for c in insertadas.split(",")} == columnas
    assert TokenUsuario._meta.db_table == "sso_tokenusuario"
    assert Usuario._meta.db_table == "sso_usuario"
