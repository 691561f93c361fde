"""POST /api/correo/save and /api/correo/getConfigCorreos (seed 000, API.md)."""

import base64
import json
import os
import threading

import pytest
import requests
from django.db import connection
from django.test import override_settings

from incidencias.models import Adjunto, CuentaCorreo, DetalleTicket, ReglaDepartamento, Ticket
from sso.models import Bitacora

SAVE = "/api/correo/save"
CONFIG = "/api/correo/getConfigCorreos"

pytestmark = pytest.mark.django_db


def correo(**extra):
    body = {
        "sistema": "canal_lectura",
        "subject": "prueba",
        "from": "Cliente Uno <cliente@example.org>",
        "to": "soporte@example.com",
        "cc": "copia@example.org",
        "bcc": "",
        "reply_to": "cliente@example.org",
        "body": "contenido del correo en texto plano.",
        "html": "<p>Contenido del correo en HTML</p><script>alert(1)</script>",
        "date": "2025-10-10 12:00:00",
        "headers": {"X-Custom-Header": "Valor", "X-Tracking-ID": "abc123"},
        "attachments": [],
    }
    body.update(extra)
    return body


@pytest.fixture
def save(api, make_consumer):
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])

    def call(body):
        return api.post(SAVE, json.dumps(body), content_type="application/json", **headers)

    return call


@pytest.fixture
def adjuntos_root(tmp_path, settings):
    root = tmp_path / "adjuntos"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "error_log.txt").write_text("linea 1\nlinea 2\n")
    (tmp_path / "secreto.txt").write_text("no debe salir")
    settings.ATTACHMENTS_ROOT = root
    return root


def test_it_creates_a_ticket_and_answers_the_seed_shape(save, soporte, agente):
    ReglaDepartamento.objects.create(campo="sistema", valor="canal_lectura", departamento=soporte)
    agente.acceso_ticket = True
    agente.save()
    response = save(correo(message_id="<m1@example.org>"))
    assert response.status_code == 200
    body = response.json()
    ticket = Ticket.objects.get()
    detalle = DetalleTicket.objects.get()
    assert body == {
        "success": True,
        "message": f"Se ha creado el ticket {ticket.numero}",
        "ticket": str(ticket.numero),
        "id_detalle_ticket": str(detalle.pk),
        "notificacion_SLA_Synology": "No emitida",  # no Synology channel registered here
        "notificacion_SLA_Correo": "En cola: cliente@example.org, agente@example.com",
        "id_departamento_asignado": str(soporte.pk),
        "id_usuario_asignado": str(agente.pk),
        "id_bitacora_log": Bitacora.objects.get().pk,
    }
    assert ticket.solicitante_email == "cliente@example.org"
    assert ticket.solicitante_nombre == "Cliente Uno"
    assert ticket.participantes == ["copia@example.org"]
    assert detalle.sistema == "canal_lectura"
    assert detalle.headers["x-tracking-id"] == "abc123"
    assert "<script>" not in detalle.html
    assert detalle.fecha.isoformat() == "2025-10-10T18:00:00+00:00"  # 12:00 in Costa Rica


def test_a_reply_threads_into_the_ticket(save):
    first = save(correo(message_id="<m1@example.org>")).json()
    reply = save(
        correo(message_id="<m2@example.org>", in_reply_to="<m1@example.org>", subject="Re: prueba")
    ).json()
    detalle = DetalleTicket.objects.get(message_id="m2@example.org")
    assert reply["ticket"] == first["ticket"]
    assert reply["message"] == f"Se ha agregado el detalle {detalle.pk} al ticket {first['ticket']}"
    assert Ticket.objects.count() == 1


def test_the_same_message_twice_returns_the_first_result_and_stores_nothing(save):
    first = save(correo(message_id="<m1@example.org>")).json()
    second = save(correo(message_id="<m1@example.org>")).json()
    assert {k: v for k, v in second.items() if k != "id_bitacora_log"} == {
        k: v for k, v in first.items() if k != "id_bitacora_log"
    }
    assert DetalleTicket.objects.count() == 1


def test_without_message_id_the_same_content_is_deduplicated(save):
    first = save(correo()).json()
    second = save(correo()).json()
    assert second["id_detalle_ticket"] == first["id_detalle_ticket"]
    assert save(correo(body="otro texto")).json()["ticket"] != first["ticket"]


def test_it_reads_route_attachments_under_the_root(save, adjuntos_root):
    body = correo(
        attachments=[{"name": "error_log.txt", "route": "logs/error_log.txt", "type": "text/plain"}]
    )
    assert save(body).status_code == 200
    adjunto = Adjunto.objects.get()
    assert (adjunto.nombre, adjunto.content_type, adjunto.tamano) == (
        "error_log.txt",
        "text/plain",
        16,
    )
    assert adjunto.archivo.read() == b"linea 1\nlinea 2\n"


@pytest.mark.parametrize(
    "route", ["../secreto.txt", "logs/../../secreto.txt", "/etc/passwd", "nada.txt"]
)
def test_it_refuses_routes_outside_the_root_and_stores_nothing(save, adjuntos_root, route):
    response = save(correo(attachments=[{"name": "x.txt", "route": route}]))
    assert response.status_code == 422
    assert "attachments" in response.json()["errors"]
    assert Ticket.objects.count() == 0
    assert DetalleTicket.objects.count() == 0


def test_it_refuses_a_link_that_leaves_the_root(save, adjuntos_root):
    os.symlink(adjuntos_root.parent / "secreto.txt", adjuntos_root / "enlace.txt")
    response = save(correo(attachments=[{"name": "x.txt", "route": "enlace.txt"}]))
    assert response.status_code == 422
    assert Ticket.objects.count() == 0


def test_it_takes_base64_content(save):
    data = base64.b64encode(b"%PDF-1.4 binario").decode()
    response = save(
        correo(attachments=[{"name": "a.pdf", "content": data, "type": "application/pdf"}])
    )
    assert response.status_code == 200
    assert Adjunto.objects.get().archivo.read() == b"%PDF-1.4 binario"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": ""}, "from"),
        ({"from": "no es correo"}, "from"),
        ({"from": ["a@example.org", 3]}, "from"),
        ({"date": "ayer"}, "date"),
        ({"attachments": [{"name": "a", "content": "%%%"}]}, "attachments"),
        ({"attachments": [{"name": "a"}]}, "attachments"),
        ({"headers": "x"}, "headers"),
    ],
)
def test_invalid_fields_are_422_and_nothing_is_stored(save, body, field):
    response = save(correo(**body))
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert Ticket.objects.count() == 0


def test_a_body_that_is_not_an_object_is_422(api, make_consumer):
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])
    response = api.post(SAVE, "[1, 2]", content_type="application/json", **headers)
    assert response.status_code == 422


@override_settings(INGEST_MAX_BYTES=1000)
def test_attachments_over_the_limit_are_refused(save):
    data = base64.b64encode(b"x" * 2000).decode()
    response = save(correo(attachments=[{"name": "a.bin", "content": data}]))
    assert response.status_code in (413, 422)
    assert Ticket.objects.count() == 0


def test_it_needs_the_correo_save_permission(api, make_consumer):
    _, headers = make_consumer("otro", permisos=["correo.config"])
    response = api.post(SAVE, json.dumps(correo()), content_type="application/json", **headers)
    assert response.status_code == 403
    assert Ticket.objects.count() == 0


@pytest.fixture
def cuentas(soporte, redes):
    a = CuentaCorreo.objects.create(
        host="mail.example.com", user="soporte@example.com", password="s3cr3t-uno",
        port=993, mail_boxes=["INBOX"], departamento=soporte,
    )  # fmt: skip
    b = CuentaCorreo.objects.create(
        host="mail.example.com", user="redes@example.com", password="s3cr3t-dos",
        port=143, mail_boxes=["INBOX", "Alertas"], departamento=redes, estado="inactivo",
    )  # fmt: skip
    return a, b


def test_get_config_returns_mailboxes_with_their_passwords(api, make_consumer, cuentas, soporte):
    _, headers = make_consumer("lector", permisos=["correo.config"])
    response = api.post(CONFIG, {"estado": "activo"}, format="json", **headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["data"] == [
        {
            "id_cuenta_correo": cuentas[0].pk,
            "host": "mail.example.com",
            "user": "soporte@example.com",
            "password": "s3cr3t-uno",
            "port": "993",
            "mail_boxes": ["INBOX"],
            "departamento": soporte.pk,
            "estado": "activo",
        }
    ]
    all_boxes = api.post(CONFIG, {}, format="json", **headers).json()["data"]
    assert [c["user"] for c in all_boxes] == ["soporte@example.com", "redes@example.com"]
    one = api.post(CONFIG, {"user": "REDES@example.com"}, format="json", **headers).json()["data"]
    assert [c["mail_boxes"] for c in one] == [["INBOX", "Alertas"]]


def test_get_config_keeps_passwords_out_of_the_audit_log(api, make_consumer, cuentas):
    _, headers = make_consumer("lector", permisos=["correo.config"])
    api.post(CONFIG, {}, format="json", **headers)
    assert "s3cr3t" not in json.dumps(Bitacora.objects.get().resumen)


def test_get_config_needs_its_own_permission(api, make_consumer, cuentas):
    _, headers = make_consumer("lector", permisos=["correo.save", "usuarios"])
    response = api.post(CONFIG, {}, format="json", **headers)
    assert response.status_code == 403
    assert "s3cr3t" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_replies_are_all_stored_on_one_ticket(live_server, make_consumer):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite runs one writer at a time")
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])
    http_headers = {"X-User-Consumo": headers["HTTP_X_USER_CONSUMO"],
                    "X-User-Secret": headers["HTTP_X_USER_SECRET"]}  # fmt: skip
    url = live_server.url + SAVE
    first = requests.post(
        url, json=correo(message_id="<raiz@example.org>"), headers=http_headers, timeout=60
    )
    numero = first.json()["ticket"]
    answers, errors = [], []

    def reply(index):
        try:
            body = correo(message_id=f"<r{index}@example.org>", in_reply_to="<raiz@example.org>")
            answers.append(requests.post(url, json=body, headers=http_headers, timeout=60))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reply, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["ticket"] for a in answers} == {numero}
    assert DetalleTicket.objects.filter(ticket__numero=int(numero)).count() == 21
    assert Ticket.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_tickets_get_distinct_numbers(live_server, make_consumer):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite runs one writer at a time")
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])
    http_headers = {"X-User-Consumo": headers["HTTP_X_USER_CONSUMO"],
                    "X-User-Secret": headers["HTTP_X_USER_SECRET"]}  # fmt: skip
    url = live_server.url + SAVE
    answers = []

    def create(index):
        body = correo(message_id=f"<n{index}@example.org>", subject=f"caso {index}")
        answers.append(requests.post(url, json=body, headers=http_headers, timeout=60))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [a.status_code for a in answers] == [200] * 20
    assert len({a.json()["ticket"] for a in answers}) == 20
    assert Ticket.objects.count() == 20


@override_settings(INGEST_MAX_BYTES=3000)
def test_route_attachments_share_one_size_budget(save, adjuntos_root):
    (adjuntos_root / "logs" / "grande.bin").write_bytes(b"x" * 2000)
    body = correo(attachments=[{"name": f"{i}.bin", "route": "logs/grande.bin"} for i in range(40)])
    response = save(body)
    assert response.status_code == 422
    assert "attachments" in response.json()["errors"]
    assert Ticket.objects.count() == 0


def test_a_directory_or_a_link_as_last_part_is_not_an_attachment(save, adjuntos_root):
    os.symlink(adjuntos_root / "logs" / "error_log.txt", adjuntos_root / "enlace-interno.txt")
    for route in ["logs", "enlace-interno.txt"]:
        response = save(correo(attachments=[{"name": "x", "route": route}]))
        assert response.status_code == 422, route
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"), [("date", "9999-12-31 23:59:59"), ("sistema", "s" * 117)]
)
def test_values_out_of_range_are_422_not_500(save, field, value):
    response = save(correo(**{field: value}))
    assert response.status_code == 422
    assert field in response.json()["errors"]
