"""A static consumer key made as safe as one can be: allowed addresses, rotation with an overlap
window, the time of last use."""

import json
import logging
import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sso import consumidores
from sso.models import Bitacora, ConsumidorAPI

pytestmark = pytest.mark.django_db

URL = "/api/UsuarioInterno/get"
UNAUTHORIZED = {"message": "Credenciales de consumo inválidas"}


def run(*args):
    out = StringIO()
    call_command("consumidor", *args, stdout=out)
    return out.getvalue()


def last_word(text):
    return text.strip().splitlines()[-1].split()[-1]


def crear(nombre="lector", ips=None):
    _, secret = consumidores.consumidor_crear(
        nombre=nombre, permisos=["usuarios"], ips_permitidas=ips
    )
    return secret


def post(api, nombre, secreto, **extra):
    headers = {"HTTP_X_USER_CONSUMO": nombre, "HTTP_X_USER_SECRET": secreto}
    return api.post(URL, json.dumps({}), content_type="application/json", **headers, **extra)


def authenticates(secreto, nombre="lector", ip=None):
    return consumidores.consumidor_autenticar(nombre=nombre, secreto=secreto, ip=ip) is not None


def updates(captured) -> list[str]:
    return [q["sql"] for q in captured if q["sql"].startswith("UPDATE")]


# --- Allowed addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ips", "allowed", "refused"),
    [
        (["203.0.113.5"], "203.0.113.5", "203.0.113.6"),
        (["10.0.0.0/8"], "10.200.3.4", "11.0.0.1"),
        (["2001:db8::/32"], "2001:db8:1::7", "2001:db9::7"),
        (["10.0.0.0/8", "2001:db8::/32"], "::ffff:10.1.1.1", "192.168.1.1"),
    ],
)
def test_it_accepts_only_the_allowed_addresses(api, ips, allowed, refused):
    secret = crear(ips=ips)
    assert post(api, "lector", secret, REMOTE_ADDR=allowed).status_code == 200
    response = post(api, "lector", secret, REMOTE_ADDR=refused)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED  # the same as a wrong secret


def test_it_logs_the_refused_address_without_the_secret(api, caplog):
    secret = crear(ips=["10.0.0.0/8"])
    with caplog.at_level(logging.INFO, logger="sso.consumidores"):
        response = post(api, "lector", secret, REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 401
    row = Bitacora.objects.get()
    assert (row.estado, row.ip, row.consumidor_id) == (401, "192.0.2.9", None)
    messages = [r.getMessage() for r in caplog.records if r.name == "sso.consumidores"]
    assert any("lector" in m and "192.0.2.9" in m and "not allowed" in m for m in messages)
    assert all(secret not in m for m in caplog.messages)


def test_it_refuses_a_restricted_consumer_when_the_address_is_unknown():
    secret = crear(ips=["10.0.0.0/8"])
    assert not authenticates(secret)
    assert not authenticates(secret, ip="not-an-address")
    assert authenticates(secret, ip="10.0.0.1")


def test_a_list_written_around_clean_fails_closed():
    secret = crear(ips=["10.0.0.0/8"])
    ConsumidorAPI.objects.update(ips_permitidas=["banana"])
    consumidores.forget_all()
    assert not authenticates(secret, ip="10.0.0.1")
    ConsumidorAPI.objects.update(ips_permitidas=["banana", "10.0.0.0/8"])
    consumidores.forget_all()
    assert authenticates(secret, ip="10.0.0.1")
    assert not authenticates(secret, ip="192.0.2.1")


def test_an_unrestricted_consumer_works_from_anywhere(api):
    secret = crear()
    assert post(api, "lector", secret, REMOTE_ADDR="198.51.100.1").status_code == 200
    assert authenticates(secret)


@override_settings(TRUSTED_PROXIES=["10.9.9.0/24"])
def test_it_checks_the_client_behind_a_trusted_proxy(api):
    secret = crear(ips=["203.0.113.0/24"])
    via_proxy = {"REMOTE_ADDR": "10.9.9.1"}
    ok = post(api, "lector", secret, HTTP_X_FORWARDED_FOR="203.0.113.5", **via_proxy)
    assert ok.status_code == 200
    # The proxy's own address is not the client's: a client elsewhere is refused.
    elsewhere = post(api, "lector", secret, HTTP_X_FORWARDED_FOR="198.51.100.4", **via_proxy)
    assert elsewhere.status_code == 401
    # A client that forged its own X-Forwarded-For is judged by the hop the proxy added.
    forged = post(
        api, "lector", secret, HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.4", **via_proxy
    )
    assert forged.status_code == 401


@override_settings(TRUSTED_PROXIES=["10.9.9.0/24"])
def test_it_ignores_x_forwarded_for_from_an_untrusted_address(api):
    secret = crear(ips=["203.0.113.0/24"])
    response = post(
        api, "lector", secret, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.5"
    )
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert Bitacora.objects.get().ip == "198.51.100.7"


@pytest.mark.parametrize(
    "bad", ["10.0.0.0/33", "banana", "10.1.2.3/8", "2001:db8::/129", "", 10, None]
)
def test_clean_rejects_what_is_not_an_address_or_network(bad):
    consumidor = ConsumidorAPI(nombre="x", secreto_hash="0" * 64, ips_permitidas=[bad])
    with pytest.raises(ValidationError) as excinfo:
        consumidor.full_clean()
    assert "ips_permitidas" in excinfo.value.message_dict


def test_clean_normalises_the_list():
    consumidor = ConsumidorAPI(
        nombre="x",
        secreto_hash="0" * 64,
        ips_permitidas=["2001:DB8::/32", " 10.0.0.0/8", "192.0.2.1", "10.0.0.0/8"],
    )
    consumidor.full_clean()
    assert consumidor.ips_permitidas == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]


def test_it_creates_a_consumer_with_allowed_ips_from_the_command():
    output = run("crear", "mesa", "--permisos", "usuarios", "--ips", "10.0.0.0/8,2001:db8::/32")
    secret = last_word(output)
    assert ConsumidorAPI.objects.get().ips_permitidas == ["10.0.0.0/8", "2001:db8::/32"]
    assert authenticates(secret, nombre="mesa", ip="10.1.2.3")
    assert authenticates(secret, nombre="mesa", ip="2001:db8::1")
    assert not authenticates(secret, nombre="mesa", ip="192.0.2.1")


def test_the_command_refuses_an_invalid_network():
    with pytest.raises(CommandError, match=re.escape("10.0.0.0/33")):
        run("crear", "mesa", "--permisos", "usuarios", "--ips", "10.0.0.0/8,10.0.0.0/33")
    assert not ConsumidorAPI.objects.exists()


def test_the_admin_sets_allowed_ips_and_applies_them_at_once(admin_client):
    secret = crear()
    row = ConsumidorAPI.objects.get()
    assert authenticates(secret, ip="192.0.2.1")  # cached
    form = {"nombre": "lector", "descripcion": "", "permisos": ["usuarios"], "activo": "on"}
    bad = admin_client.post(
        f"/admin/sso/consumidorapi/{row.pk}/change/", {**form, "ips_permitidas": "10.0.0.0/33"}
    )
    assert bad.status_code == 200  # the form again, with the error
    response = admin_client.post(
        f"/admin/sso/consumidorapi/{row.pk}/change/",
        {**form, "ips_permitidas": "10.0.0.0/8, 2001:db8::/32"},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.ips_permitidas == ["10.0.0.0/8", "2001:db8::/32"]
    assert row.secreto_hash == consumidores.hash_secret(secret)
    assert not authenticates(secret, ip="192.0.2.1")
    assert authenticates(secret, ip="10.0.0.1")
    page = admin_client.get(f"/admin/sso/consumidorapi/{row.pk}/change/")
    assert "10.0.0.0/8, 2001:db8::/32" in page.content.decode()


def test_an_admin_edit_during_the_overlap_keeps_the_previous_secret(admin_client):
    old = crear()
    row = ConsumidorAPI.objects.get()
    new = consumidores.consumidor_rotar(consumidor=row)
    response = admin_client.post(
        f"/admin/sso/consumidorapi/{row.pk}/change/",
        {"nombre": "lector", "descripcion": "otro", "permisos": ["usuarios"], "activo": "on"},
    )
    assert response.status_code == 302
    assert authenticates(old)
    assert authenticates(new)


# --- Rotation with an overlap window -------------------------------------------------------


def test_both_secrets_work_inside_the_overlap_and_only_the_new_one_after(api):
    old = crear()
    row = ConsumidorAPI.objects.get()
    before = timezone.now()
    new = consumidores.consumidor_rotar(consumidor=row, solapamiento=timedelta(hours=2))
    row.refresh_from_db()
    assert before + timedelta(hours=2) <= row.anterior_vence <= timezone.now() + timedelta(hours=2)
    assert post(api, "lector", old).status_code == 200
    assert post(api, "lector", new).status_code == 200
    ConsumidorAPI.objects.filter(pk=row.pk).update(
        anterior_vence=timezone.now() - timedelta(seconds=1)
    )
    with override_settings(CONSUMIDOR_CACHE_SECONDS=0):
        assert post(api, "lector", old).status_code == 401
        assert post(api, "lector", new).status_code == 200


def test_the_overlap_ends_on_time_even_in_a_cached_snapshot(monkeypatch):
    old = crear()
    row = ConsumidorAPI.objects.get()
    consumidores.consumidor_rotar(consumidor=row, solapamiento=timedelta(minutes=10))
    assert authenticates(old)  # cached now, for CONSUMIDOR_CACHE_SECONDS
    later = time.time() + 601
    monkeypatch.setattr(consumidores, "_reloj", lambda: later)
    assert not authenticates(old)


def test_the_default_overlap_comes_from_the_setting():
    old = crear()
    row = ConsumidorAPI.objects.get()
    with override_settings(CONSUMIDOR_SOLAPAMIENTO_HORAS=3):
        consumidores.consumidor_rotar(consumidor=row)
    expected = timezone.now() + timedelta(hours=3)
    assert abs(row.anterior_vence - expected) < timedelta(seconds=5)
    assert authenticates(old)


def test_a_zero_overlap_cuts_over_at_once(api):
    old = crear()
    row = ConsumidorAPI.objects.get()
    assert authenticates(old)  # cached
    new = consumidores.consumidor_rotar(consumidor=row, solapamiento=timedelta(0))
    assert post(api, "lector", old).status_code == 401
    assert post(api, "lector", new).status_code == 200
    row.refresh_from_db()
    assert (row.secreto_anterior_hash, row.anterior_vence) == ("", None)


def test_revoking_kills_both_secrets_at_once():
    old = crear()
    row = ConsumidorAPI.objects.get()
    new = consumidores.consumidor_rotar(consumidor=row)
    assert authenticates(old) and authenticates(new)
    consumidores.consumidor_revocar(consumidor=row)
    assert not authenticates(old)
    assert not authenticates(new)
    row.refresh_from_db()
    assert (row.secreto_anterior_hash, row.anterior_vence) == ("", None)


def test_rotating_twice_keeps_only_the_latest_previous_secret():
    first = crear()
    row = ConsumidorAPI.objects.get()
    second = consumidores.consumidor_rotar(consumidor=row)
    third = consumidores.consumidor_rotar(consumidor=row)
    assert not authenticates(first)
    assert authenticates(second)
    assert authenticates(third)
    row.refresh_from_db()
    assert row.secreto_anterior_hash == consumidores.hash_secret(second)


def test_an_expired_previous_secret_is_logged_without_the_secret(caplog):
    old = crear()
    row = ConsumidorAPI.objects.get()
    consumidores.consumidor_rotar(consumidor=row, solapamiento=timedelta(hours=1))
    ConsumidorAPI.objects.filter(pk=row.pk).update(anterior_vence=timezone.now())
    consumidores.forget_all()
    with caplog.at_level(logging.INFO, logger="sso.consumidores"):
        assert not authenticates(old)
    assert any("previous secret" in m for m in caplog.messages)
    assert all(old not in m for m in caplog.messages)


@pytest.mark.parametrize("overlap", [timedelta(seconds=-1), timedelta(days=91)])
def test_it_refuses_a_negative_or_endless_overlap(overlap):
    old = crear()
    row = ConsumidorAPI.objects.get()
    with pytest.raises(ValidationError):
        consumidores.consumidor_rotar(consumidor=row, solapamiento=overlap)
    row.refresh_from_db()
    assert row.secreto_hash == consumidores.hash_secret(old)


def test_the_command_rotates_with_an_overlap_in_hours():
    old = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    output = run("rotar", "mesa", "--solapamiento", "1.5")
    new = last_word(output)  # the contract: the new secret is the last word of the last line
    row = ConsumidorAPI.objects.get()
    assert row.secreto_hash == consumidores.hash_secret(new)
    assert abs(row.anterior_vence - timezone.now() - timedelta(minutes=90)) < timedelta(seconds=5)
    assert "previous secret works until" in output
    assert authenticates(old, nombre="mesa") and authenticates(new, nombre="mesa")
    output = run("rotar", "mesa", "--solapamiento", "0")
    assert "no longer works" in output
    assert not authenticates(old, nombre="mesa")
    assert not authenticates(new, nombre="mesa")
    assert authenticates(last_word(output), nombre="mesa")


@pytest.mark.parametrize("hours", ["-1", "nan", "inf", "10000"])
def test_the_command_refuses_a_bad_overlap(hours):
    old = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    with pytest.raises(CommandError):
        run("rotar", "mesa", "--solapamiento", hours)
    assert authenticates(old, nombre="mesa")
    assert ConsumidorAPI.objects.get().rotado is None


def test_the_admin_rotation_says_until_when_the_old_secret_works(admin_client):
    old = crear()
    row = ConsumidorAPI.objects.get()
    with override_settings(CONSUMIDOR_SOLAPAMIENTO_HORAS=0):
        response = admin_client.post(
            "/admin/sso/consumidorapi/",
            {"action": "rotar", "_selected_action": [row.pk]},
            follow=True,
        )
    # The admin speaks Spanish by default.
    assert "lector: El anterior ya no funciona." in [str(m) for m in response.context["messages"]]
    assert not authenticates(old)


# --- Last use --------------------------------------------------------------------------------


def test_last_use_is_written_once_for_many_calls(api):
    secret = crear()
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(20):
            assert post(api, "lector", secret).status_code == 200
    assert len(updates(ctx.captured_queries)) == 1, updates(ctx.captured_queries)
    row = ConsumidorAPI.objects.get()
    assert timezone.now() - row.ultimo_uso < timedelta(seconds=5)
    # Another process (a reloaded snapshot) sees the recent use in the row and writes nothing.
    with override_settings(CONSUMIDOR_CACHE_SECONDS=0):
        consumidores._usos.clear()
        with CaptureQueriesContext(connection) as ctx:
            for _ in range(5):
                assert authenticates(secret)
    assert updates(ctx.captured_queries) == []


def test_last_use_is_updated_after_a_minute(monkeypatch):
    secret = crear()
    assert authenticates(secret)
    first = ConsumidorAPI.objects.get().ultimo_uso
    later = time.time() + 61
    monkeypatch.setattr(consumidores, "_reloj", lambda: later)
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(5):
            assert authenticates(secret)
    assert len(updates(ctx.captured_queries)) == 1
    assert ConsumidorAPI.objects.get().ultimo_uso - first > timedelta(seconds=60)


def test_a_refused_call_is_not_a_use():
    secret = crear(ips=["10.0.0.0/8"])
    assert not authenticates("wrong")
    assert not authenticates(secret, ip="192.0.2.1")
    assert ConsumidorAPI.objects.get().ultimo_uso is None


def test_a_known_consumer_stays_query_free_after_its_first_use(django_assert_num_queries):
    secret = crear(ips=["10.0.0.0/8"])
    assert authenticates(secret, ip="10.0.0.1")
    with django_assert_num_queries(0):
        for _ in range(10):
            assert authenticates(secret, ip="10.0.0.1")


def test_the_list_shows_allowed_ips_and_last_use_never_secrets():
    secret_a = last_word(run("crear", "alfa", "--permisos", "usuarios", "--ips", "10.0.0.0/8"))
    secret_b = last_word(run("crear", "beta", "--permisos", "sso"))
    assert authenticates(secret_a, nombre="alfa", ip="10.0.0.1")
    new_a = last_word(run("rotar", "alfa"))
    output = run("listar")
    lines = {line.split("\t")[0]: line.split("\t") for line in output.strip().splitlines()}
    alfa, beta = lines["alfa"], lines["beta"]
    assert alfa[1:4] == ["active", "usuarios", "10.0.0.0/8"]
    used = ConsumidorAPI.objects.get(nombre="alfa").ultimo_uso
    assert alfa[4] == timezone.localtime(used).isoformat(timespec="seconds")
    assert alfa[5] != "-"  # the previous secret's end of overlap
    assert beta[1:6] == ["active", "sso", "any", "never", "-"]
    for row in ConsumidorAPI.objects.all():
        assert row.secreto_hash not in output
        assert not row.secreto_anterior_hash or row.secreto_anterior_hash not in output
    for secret in (secret_a, secret_b, new_a):
        assert secret not in output


def test_the_admin_list_shows_allowed_ips_and_last_use(admin_client):
    secret = crear(ips=["10.0.0.0/8"])
    assert authenticates(secret, ip="10.0.0.1")
    page = admin_client.get("/admin/sso/consumidorapi/").content.decode()
    assert "10.0.0.0/8" in page
    assert "column-ultimo_uso" in page
    assert ConsumidorAPI.objects.get().secreto_hash not in page
