"""Consumers (command and admin) and the append-only audit log (model, admin, pruning)."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from sso import consumidores
from sso.bitacora import bitacora_podar
from sso.models import Bitacora, ConsumidorAPI
from sso.tasks import podar_bitacora_task

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("consumidor", *args, stdout=out)
    return out.getvalue()


def last_word(text):
    return text.strip().splitlines()[-1].split()[-1]


def authenticates(nombre, secreto):
    return consumidores.consumidor_autenticar(nombre=nombre, secreto=secreto) is not None


# --- consumidor crear / listar / rotar / revocar ------------------------------------------


def test_it_creates_a_consumer_and_prints_its_secret_last():
    output = run("crear", "mesa", "--permisos", "usuarios,correo.save", "--descripcion", "Mesa")
    secret = last_word(output)
    assert len(secret) >= 40
    consumidor = consumidores.consumidor_autenticar(nombre="mesa", secreto=secret)
    assert consumidor is not None
    assert consumidor.permisos == {"usuarios", "correo.save"}
    row = ConsumidorAPI.objects.get(nombre="mesa")
    assert row.descripcion == "Mesa"
    assert row.activo
    assert row.secreto_hash == consumidores.hash_secret(secret)
    assert secret not in row.secreto_hash
    assert not authenticates("mesa", secret[:-1] + ("A" if secret[-1] != "A" else "B"))


def test_it_gives_every_consumer_its_own_secret():
    first = last_word(run("crear", "uno", "--permisos", "usuarios"))
    second = last_word(run("crear", "dos", "--permisos", "usuarios"))
    assert first != second
    assert not authenticates("uno", second)
    assert not authenticates("dos", first)


def test_it_accepts_every_documented_permission():
    secret = last_word(
        run("crear", "todo", "--permisos", "sso,sso.adi,correo.config,correo.save,usuarios")
    )
    consumidor = consumidores.consumidor_autenticar(nombre="todo", secreto=secret)
    assert consumidor.permisos == {"sso", "sso.adi", "correo.config", "correo.save", "usuarios"}


def test_it_refuses_an_unknown_permission_and_creates_nothing():
    with pytest.raises(CommandError, match=r"correo\.borrar"):
        run("crear", "mesa", "--permisos", "usuarios,correo.borrar")
    assert not ConsumidorAPI.objects.exists()


def test_it_refuses_a_duplicate_name():
    secret = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    with pytest.raises(CommandError, match="already exists"):
        run("crear", "mesa", "--permisos", "sso")
    assert ConsumidorAPI.objects.count() == 1
    assert ConsumidorAPI.objects.get().permisos == ["usuarios"]
    assert authenticates("mesa", secret)


def test_it_lists_consumers_without_secrets_or_hashes():
    secret_a = last_word(run("crear", "alfa", "--permisos", "usuarios,sso"))
    secret_b = last_word(run("crear", "beta", "--permisos", "correo.save"))
    run("revocar", "beta")
    output = run("listar")
    lines = {line.split("\t")[0]: line.split("\t") for line in output.strip().splitlines()}
    assert lines["alfa"][1:3] == ["active", "sso,usuarios"]
    assert lines["beta"][1:3] == ["revoked", "correo.save"]
    for row in ConsumidorAPI.objects.all():
        assert row.secreto_hash not in output
    assert secret_a not in output
    assert secret_b not in output


def test_it_rotates_a_secret():
    old = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    assert authenticates("mesa", old)  # cached now: the rotation must drop it
    output = run("rotar", "mesa", "--solapamiento", "0")
    new = last_word(output)
    assert new != old
    assert "mesa" in output
    assert authenticates("mesa", new)
    assert not authenticates("mesa", old)
    assert ConsumidorAPI.objects.get(nombre="mesa").rotado is not None


def test_a_rotated_secret_keeps_working_for_the_default_overlap():
    old = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    output = run("rotar", "mesa")
    new = last_word(output)
    assert "previous secret works until" in output
    assert authenticates("mesa", new)
    assert authenticates("mesa", old)


def test_it_revokes_a_consumer():
    secret = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    assert authenticates("mesa", secret)
    run("revocar", "mesa")
    assert not authenticates("mesa", secret)
    row = ConsumidorAPI.objects.get(nombre="mesa")
    assert not row.activo
    assert row.revocado is not None


def test_it_refuses_to_rotate_a_revoked_consumer():
    secret = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    run("revocar", "mesa")
    with pytest.raises(CommandError, match="revoked"):
        run("rotar", "mesa")
    assert not authenticates("mesa", secret)


@pytest.mark.parametrize("accion", ["rotar", "revocar"])
def test_it_refuses_an_unknown_consumer(accion):
    run("crear", "mesa", "--permisos", "usuarios")
    with pytest.raises(CommandError, match="fantasma"):
        run(accion, "fantasma")
    assert ConsumidorAPI.objects.get(nombre="mesa").activo


# --- The audit log is append-only ---------------------------------------------------------


def entry(**fields):
    return Bitacora.objects.create(
        endpoint=fields.pop("endpoint", "/api/UsuarioInterno/get"),
        metodo="POST",
        estado=fields.pop("estado", 200),
        ip="10.0.0.8",
        **fields,
    )


def test_it_refuses_to_change_an_audit_row():
    row = entry()
    row.estado = 500
    with pytest.raises(ValidationError, match="append-only"):
        row.save()
    assert Bitacora.objects.get(pk=row.pk).estado == 200


def test_it_refuses_to_delete_an_audit_row():
    row = entry()
    with pytest.raises(ValidationError, match="append-only"):
        row.delete()
    assert Bitacora.objects.filter(pk=row.pk).exists()


def test_it_prunes_rows_older_than_the_given_days():
    now = timezone.now()
    ancient = entry(creado=now - timedelta(days=400))
    old = entry(creado=now - timedelta(days=30, minutes=1))
    recent = entry(creado=now - timedelta(days=29, hours=23))
    fresh = entry()
    out = StringIO()
    call_command("podar_bitacora", "--dias", "30", stdout=out)
    assert "Deleted 2 " in out.getvalue()
    remaining = set(Bitacora.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, fresh.pk}
    assert ancient.pk not in remaining
    assert old.pk not in remaining


@override_settings(BITACORA_RETENTION_DAYS=90)
def test_it_prunes_by_the_configured_retention_by_default():
    now = timezone.now()
    old = entry(creado=now - timedelta(days=91))
    kept = entry(creado=now - timedelta(days=89))
    out = StringIO()
    call_command("podar_bitacora", stdout=out)
    assert "90 days" in out.getvalue()
    assert list(Bitacora.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Bitacora.objects.filter(pk=old.pk).exists()


@override_settings(BITACORA_RETENTION_DAYS=10)
def test_it_prunes_by_the_configured_retention_from_the_task():
    now = timezone.now()
    entry(creado=now - timedelta(days=11))
    kept = entry(creado=now - timedelta(days=9))
    assert podar_bitacora_task() == 1
    assert list(Bitacora.objects.values_list("pk", flat=True)) == [kept.pk]


def test_it_prunes_a_backlog_larger_than_one_batch():
    creado = timezone.now() - timedelta(days=400)
    Bitacora.objects.bulk_create(
        Bitacora(creado=creado, endpoint="/x", metodo="GET", estado=200) for _ in range(5003)
    )
    kept = entry()
    assert bitacora_podar(dias=30) == 5003
    assert list(Bitacora.objects.values_list("pk", flat=True)) == [kept.pk]


# --- Audit log in the admin ---------------------------------------------------------------


def test_it_shows_the_audit_log_in_the_admin(admin_client):
    row = entry(endpoint="/api/UsuarioInterno/get", id_padre=7)
    response = admin_client.get("/admin/sso/bitacora/")
    assert response.status_code == 200
    assert "/api/UsuarioInterno/get" in response.content.decode()
    response = admin_client.get(f"/admin/sso/bitacora/{row.pk}/change/")
    assert response.status_code == 200
    assert "/api/UsuarioInterno/get" in response.content.decode()
    assert b'name="_save"' not in response.content
    assert f"/admin/sso/bitacora/{row.pk}/delete/".encode() not in response.content


@pytest.mark.parametrize("q", ["UsuarioInterno", "10.0.0.8", "7", "texto libre", "::1"])
def test_it_searches_the_audit_log_in_the_admin(admin_client, q):
    entry(endpoint="/api/UsuarioInterno/get", id_padre=7)
    response = admin_client.get("/admin/sso/bitacora/", {"q": q})
    assert response.status_code == 200


def test_it_offers_no_add_in_the_admin(admin_client):
    assert admin_client.get("/admin/sso/bitacora/add/").status_code == 403
    response = admin_client.post(
        "/admin/sso/bitacora/add/", {"endpoint": "/x", "metodo": "GET", "estado": 200}
    )
    assert response.status_code == 403
    assert not Bitacora.objects.exists()


def test_it_refuses_a_change_submitted_in_the_admin(admin_client):
    row = entry()
    response = admin_client.post(
        f"/admin/sso/bitacora/{row.pk}/change/",
        {"endpoint": "/falso", "metodo": "GET", "estado": 500, "creado_0": "", "creado_1": ""},
    )
    assert response.status_code == 403
    stored = Bitacora.objects.get(pk=row.pk)
    assert (stored.endpoint, stored.estado) == ("/api/UsuarioInterno/get", 200)


def test_it_offers_no_delete_in_the_admin(admin_client):
    row = entry()
    assert admin_client.get(f"/admin/sso/bitacora/{row.pk}/delete/").status_code == 403
    response = admin_client.post(f"/admin/sso/bitacora/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    response = admin_client.post(
        "/admin/sso/bitacora/",
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert Bitacora.objects.filter(pk=row.pk).exists()


# --- Consumers in the admin ---------------------------------------------------------------


def secrets_in(response):
    """The secrets the page's messages show (each is a message's last word)."""
    return [str(m).split()[-1] for m in response.context["messages"]]


def test_it_shows_the_secret_once_when_the_admin_creates_a_consumer(admin_client):
    response = admin_client.post(
        "/admin/sso/consumidorapi/add/",
        {
            "nombre": "portal",
            "descripcion": "Portal de clientes",
            "permisos": ["usuarios", "sso"],
            "activo": "on",
        },
        follow=True,
    )
    assert response.redirect_chain[0][1] == 302
    row = ConsumidorAPI.objects.get(nombre="portal")
    assert row.descripcion == "Portal de clientes"
    assert sorted(row.permisos) == ["sso", "usuarios"]
    assert row.activo
    shown = [s for s in secrets_in(response) if consumidores.hash_secret(s) == row.secreto_hash]
    assert len(shown) == 1
    secret = shown[0]
    consumidor = consumidores.consumidor_autenticar(nombre="portal", secreto=secret)
    assert consumidor is not None
    assert consumidor.permisos == {"usuarios", "sso"}
    assert secret.encode() in response.content
    # Shown once: the pages that follow never show it again.
    for url in ("/admin/sso/consumidorapi/", f"/admin/sso/consumidorapi/{row.pk}/change/"):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert secret.encode() not in page.content
        assert row.secreto_hash.encode() not in page.content


def test_it_creates_an_inactive_consumer_when_the_admin_unticks_active(admin_client):
    response = admin_client.post(
        "/admin/sso/consumidorapi/add/",
        {"nombre": "apagado", "descripcion": "", "permisos": ["usuarios"]},
        follow=True,
    )
    assert response.redirect_chain[0][1] == 302
    row = ConsumidorAPI.objects.get(nombre="apagado")
    assert not row.activo
    shown = [s for s in secrets_in(response) if consumidores.hash_secret(s) == row.secreto_hash]
    assert len(shown) == 1
    assert not authenticates("apagado", shown[0])


def test_it_refuses_a_duplicate_name_in_the_admin(admin_client):
    run("crear", "portal", "--permisos", "usuarios")
    response = admin_client.post(
        "/admin/sso/consumidorapi/add/",
        {"nombre": "portal", "descripcion": "", "permisos": ["sso"], "activo": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert ConsumidorAPI.objects.get().permisos == ["usuarios"]


def test_it_rotates_a_secret_from_the_admin(admin_client):
    old = last_word(run("crear", "portal", "--permisos", "usuarios"))
    row = ConsumidorAPI.objects.get(nombre="portal")
    assert authenticates("portal", old)
    response = admin_client.post(
        "/admin/sso/consumidorapi/",
        {"action": "rotar", "_selected_action": [row.pk]},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.redirect_chain[0][1] == 302
    row.refresh_from_db()
    shown = [s for s in secrets_in(response) if consumidores.hash_secret(s) == row.secreto_hash]
    assert len(shown) == 1
    assert shown[0] != old
    assert authenticates("portal", shown[0])
    # The default overlap: the old secret works until the time the admin was told.
    assert authenticates("portal", old)
    assert any("previous one works until" in str(m) for m in response.context["messages"])
    assert row.anterior_vence is not None


def test_it_revokes_from_the_admin(admin_client):
    secret = last_word(run("crear", "portal", "--permisos", "usuarios"))
    row = ConsumidorAPI.objects.get(nombre="portal")
    assert authenticates("portal", secret)
    response = admin_client.post(
        "/admin/sso/consumidorapi/", {"action": "revocar", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert not authenticates("portal", secret)
    row.refresh_from_db()
    assert row.revocado is not None


def test_it_applies_an_admin_edit_at_once(admin_client):
    secret = last_word(run("crear", "portal", "--permisos", "usuarios"))
    row = ConsumidorAPI.objects.get(nombre="portal")
    assert authenticates("portal", secret)  # cached
    response = admin_client.post(
        f"/admin/sso/consumidorapi/{row.pk}/change/",
        {"nombre": "portal-2", "descripcion": "", "permisos": ["sso"], "activo": "on"},
    )
    assert response.status_code == 302
    assert not authenticates("portal", secret)  # the old name is gone at once
    consumidor = consumidores.consumidor_autenticar(nombre="portal-2", secreto=secret)
    assert consumidor.permisos == {"sso"}


def test_it_stops_a_consumer_deactivated_in_the_admin(admin_client):
    secret = last_word(run("crear", "portal", "--permisos", "usuarios"))
    row = ConsumidorAPI.objects.get(nombre="portal")
    assert authenticates("portal", secret)
    response = admin_client.post(
        f"/admin/sso/consumidorapi/{row.pk}/change/",
        {"nombre": "portal", "descripcion": "", "permisos": ["usuarios"]},
    )
    assert response.status_code == 302
    assert not authenticates("portal", secret)


def test_it_prints_a_url_safe_secret():
    secret = last_word(run("crear", "mesa", "--permisos", "usuarios"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)


def test_the_admin_refuses_to_rotate_a_revoked_consumer(admin_client):
    run("crear", "portal", "--permisos", "usuarios")
    row = ConsumidorAPI.objects.get(nombre="portal")
    consumidores.consumidor_revocar(consumidor=row)
    before = ConsumidorAPI.objects.get(pk=row.pk).secreto_hash
    response = admin_client.post(
        "/admin/sso/consumidorapi/",
        {"action": "rotar", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "revoked" in response.content.decode()
    assert ConsumidorAPI.objects.get(pk=row.pk).secreto_hash == before
