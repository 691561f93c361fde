"""Tickets API v1: the rights matrix, every Bearer kind and scope, RFC 7807 problems, cursor
pages and constant query counts."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from incidencias.ingest import ingest_raw
from incidencias.models import (
    Adjunto,
    CuentaCorreo,
    DetalleTicket,
    Notificacion,
    Ticket,
)
from incidencias.services import AdjuntoNuevo, ticket_anotar, ticket_responder
from sso.jwt import jwt_emitir
from sso.models import Departamento, Usuario
from sso.tokens import token_emitir

pytestmark = pytest.mark.django_db
PROBLEMA = "application/problem+json"


def bearer(usuario, kind="user", scope="read write"):
    """An Authorization header with a token of `kind` for `usuario`."""
    if kind == "user":
        raw = token_emitir(usuario=usuario)[1]
    elif kind == "jwt":
        raw = jwt_emitir(usuario=usuario, operador="example")[0]
    else:
        raw = f"oauth-{uuid.uuid4().hex}"
        get_access_token_model().objects.create(
            user=usuario, token=raw, scope=scope, expires=timezone.now() + timedelta(hours=1)
        )
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def personas(soporte, redes):
    def crear(username, **campos):
        return Usuario.objects.create_user(
            username=username, email=f"{username}@example.com", password="x", **campos
        )

    staff_lector = crear("auditora", is_staff=True)
    staff = crear("supervisor", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_ticket"))
    return {
        "agente": crear("ana", nombre="Ana Agente", departamento=soporte, acceso_ticket=True),
        "jefa": crear("jefa", departamento=soporte, jefe=True),
        "otro": crear("rita", departamento=redes, acceso_ticket=True),
        "staff": Usuario.objects.get(pk=staff.pk),
        "staff_lector": staff_lector,
        "cliente": crear("cliente"),
    }


@pytest.fixture
def buzon(soporte):
    return CuentaCorreo.objects.create(
        host="127.0.0.1", user="soporte@example.com", departamento=soporte
    )


def correo(*, asunto="Sin servicio", message_id=None, cuerpo="No tengo internet."):
    message_id = message_id or f"<{uuid.uuid4().hex}@example.org>"
    return (
        f"From: Cliente <cliente@example.org>\r\nTo: soporte@example.com\r\nSubject: {asunto}\r\n"
        f"Message-ID: {message_id}\r\nDate: Tue, 10 Mar 2026 10:00:00 -0600\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{cuerpo}\r\n"
    ).encode()


@pytest.fixture
def ticket(buzon, personas):
    return ingest_raw(correo(), cuenta=buzon).ticket


def problema(respuesta, status):
    assert respuesta.status_code == status, respuesta.content
    assert respuesta["Content-Type"] == PROBLEMA
    cuerpo = json.loads(respuesta.content)
    assert cuerpo["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(cuerpo)
    return cuerpo


# --- Reading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quien", "ve"),
    [
        ("agente", True),
        ("jefa", True),
        ("staff", True),
        ("staff_lector", True),
        ("otro", False),
        ("cliente", False),
    ],
)
def test_who_sees_a_ticket(api, ticket, personas, quien, ve):
    cabecera = bearer(personas[quien])
    detalle = api.get(f"/api/v1/tickets/{ticket.numero}", **cabecera)
    lista = api.get("/api/v1/tickets", **cabecera)
    assert lista.status_code == 200
    numeros = [t["numero"] for t in lista.json()["results"]]
    if ve:
        assert detalle.status_code == 200 and detalle.json()["numero"] == ticket.numero
        assert numeros == [ticket.numero]
    else:
        problema(detalle, 404)
        assert numeros == []


@pytest.mark.parametrize("kind", ["user", "jwt", "oauth"])
def test_every_bearer_kind_reads(api, ticket, personas, kind):
    respuesta = api.get(f"/api/v1/tickets/{ticket.numero}", **bearer(personas["agente"], kind))
    assert respuesta.status_code == 200
    assert respuesta["Content-Type"] == "application/json"


def test_anonymous_and_bad_tokens_get_a_401_problem(api, ticket):
    problema(api.get("/api/v1/tickets"), 401)
    problema(api.get("/api/v1/tickets", HTTP_AUTHORIZATION="Bearer 1|nope"), 401)
    problema(api.get("/api/v1/tickets", HTTP_AUTHORIZATION="Bearer a.b.c"), 401)
    problema(api.get("/api/v1/tickets", HTTP_AUTHORIZATION="Bearer opaque"), 401)


def test_the_thread_shows_internal_notes_to_agents_only(api, ticket, personas, soporte):
    ticket_anotar(ticket=ticket, autor=personas["agente"], texto="Nota interna")
    vecino = Usuario.objects.create_user("vecino", "v@example.com", "x", departamento=soporte)
    Ticket.objects.filter(pk=ticket.pk).update(asignado=vecino)  # sees it, does not work it
    de_agente = api.get(f"/api/v1/tickets/{ticket.numero}", **bearer(personas["agente"])).json()
    de_vecino = api.get(f"/api/v1/tickets/{ticket.numero}", **bearer(vecino)).json()
    assert "nota" in [d["tipo"] for d in de_agente["detalles"]]
    assert "nota" not in [d["tipo"] for d in de_vecino["detalles"]]
    assert de_vecino["detalles"][0]["texto"].startswith("No tengo internet")


def test_it_filters_and_searches(api, buzon, personas, soporte):
    a = ingest_raw(correo(asunto="Impresora atascada"), cuenta=buzon).ticket
    b = ingest_raw(correo(asunto="Correo lento"), cuenta=buzon).ticket
    Ticket.objects.filter(pk=b.pk).update(prioridad="alta", estado="abierto", asignado=None)
    cabecera = bearer(personas["jefa"])

    def numeros(**filtros):
        respuesta = api.get("/api/v1/tickets", filtros, **cabecera)
        assert respuesta.status_code == 200, respuesta.content
        return [t["numero"] for t in respuesta.json()["results"]]

    assert numeros(prioridad="alta") == [b.numero]
    assert numeros(estado="nuevo") == [a.numero]
    assert numeros(asignado="ninguno") == [b.numero]
    assert numeros(asignado=personas["agente"].pk) == [a.numero]
    assert numeros(departamento=soporte.pk) == [b.numero, a.numero]
    assert numeros(canal="api") == []
    assert numeros(sla="ok") == [b.numero, a.numero]
    assert numeros(q="impresora") == [a.numero]
    problema(api.get("/api/v1/tickets", {"estado": "borrado"}, **cabecera), 422)
    cuerpo = problema(api.get("/api/v1/tickets", {"departamento": "x"}, **cabecera), 422)
    assert "departamento" in cuerpo["errors"]
    problema(api.get("/api/v1/tickets", {"cursor": "no-es-un-cursor"}, **cabecera), 400)


def test_cursor_pages_walk_every_ticket_once(api, soporte, personas):
    ahora = timezone.now()
    for i in range(7):
        t = Ticket.objects.create(numero=100 + i, asunto=f"t{i}", departamento=soporte)
        # Two share a creation moment: the id breaks the tie.
        Ticket.objects.filter(pk=t.pk).update(creado=ahora - timedelta(minutes=i // 2 * 2))
    cabecera, vistos, url = bearer(personas["jefa"]), [], "/api/v1/tickets?limite=3"
    while url:
        pagina = api.get(url, **cabecera).json()
        vistos += [t["numero"] for t in pagina["results"]]
        url = pagina["next"]
    assert sorted(vistos) == list(range(100, 107)) and len(vistos) == 7


def test_the_list_costs_the_same_queries_for_one_ticket_or_many(api, soporte, personas, redes):
    cabecera = bearer(personas["jefa"])
    Ticket.objects.create(numero=1, asunto="uno", departamento=soporte, asignado=personas["agente"])
    api.get("/api/v1/tickets", **cabecera)  # warm caches
    with CaptureQueriesContext(connection) as uno:
        assert len(api.get("/api/v1/tickets", **cabecera).json()["results"]) == 1
    for i in range(2, 30):
        Ticket.objects.create(
            numero=i, asunto=f"t{i}", departamento=soporte, asignado=personas["agente"]
        )
    with CaptureQueriesContext(connection) as muchos:
        assert len(api.get("/api/v1/tickets", **cabecera).json()["results"]) == 25
    assert len(muchos) == len(uno)


def test_the_detail_costs_the_same_queries_whatever_the_thread(api, ticket, personas):
    cabecera = bearer(personas["agente"])
    url = f"/api/v1/tickets/{ticket.numero}"
    api.get(url, **cabecera)
    with CaptureQueriesContext(connection) as corto:
        api.get(url, **cabecera)
    for i in range(10):
        ticket_anotar(ticket=ticket, autor=personas["agente"], texto=f"nota {i}")
        ticket_responder(
            ticket=ticket,
            autor=personas["agente"],
            texto=f"respuesta {i}",
            adjuntos=[AdjuntoNuevo(f"a{i}.txt", f"{i}".encode(), "text/plain")],
        )
    with CaptureQueriesContext(connection) as largo:
        assert len(api.get(url, **cabecera).json()["detalles"]) > 20
    assert len(largo) == len(corto)


# --- Writing --------------------------------------------------------------------------------


def test_an_agent_replies_notes_assigns_and_changes_state(api, ticket, personas):
    cabecera = bearer(personas["agente"])
    base = f"/api/v1/tickets/{ticket.numero}"
    respuesta = api.post(
        f"{base}/respuestas",
        {
            "texto": "Reinicie el módem.",
            "cc": ["jefe@example.org"],
            "estado": "en_espera",
            "adjuntos": [
                {"nombre": "guia.txt", "content_type": "text/plain",
                 "contenido": base64.b64encode(b"paso 1").decode()}
            ],
        },
        format="json",
        **cabecera,
    )  # fmt: skip
    assert respuesta.status_code == 201, respuesta.content
    assert respuesta.json()["tipo"] == "respuesta"
    assert respuesta.json()["adjuntos"][0]["nombre"] == "guia.txt"
    assert Notificacion.objects.filter(evento="respuesta", ticket=ticket).count() == 1

    nota = api.post(f"{base}/notas", {"texto": "interna"}, format="json", **cabecera)
    assert nota.status_code == 201 and nota.json()["tipo"] == "nota"

    asignado = api.post(f"{base}/asignar", {"agente": None}, format="json", **cabecera)
    assert asignado.status_code == 200 and asignado.json()["asignado"] is None
    estado = api.post(f"{base}/estado", {"estado": "resuelto"}, format="json", **cabecera)
    assert estado.status_code == 200 and estado.json()["estado"] == "resuelto"
    prioridad = api.post(f"{base}/prioridad", {"prioridad": "alta"}, format="json", **cabecera)
    assert prioridad.json()["prioridad"] == "alta"
    ticket.refresh_from_db()
    assert (ticket.estado, ticket.prioridad, ticket.asignado) == ("resuelto", "alta", None)


def test_a_system_creates_a_ticket_through_the_api(api, soporte, personas):
    respuesta = api.post(
        "/api/v1/tickets",
        {"departamento": soporte.pk, "asunto": "Desde el ERP", "texto": "Falla la factura",
         "solicitante_email": "cliente@example.org"},
        format="json",
        **bearer(personas["agente"], "oauth", scope="write read"),
    )  # fmt: skip
    assert respuesta.status_code == 201, respuesta.content
    cuerpo = respuesta.json()
    assert respuesta["Location"] == cuerpo["url"] == f"/api/v1/tickets/{cuerpo['numero']}"
    assert (cuerpo["canal"], cuerpo["asignado"]["id"]) == ("api", personas["agente"].pk)
    assert cuerpo["detalles"][0]["texto"] == "Falla la factura"
    otro = api.post(
        "/api/v1/tickets",
        {"departamento": soporte.pk, "asunto": "x", "texto": "y"},
        format="json",
        **bearer(personas["otro"]),
    )
    problema(otro, 403)
    cuerpo = problema(
        api.post("/api/v1/tickets", {"departamento": 999, "asunto": "", "texto": "y"},
                 format="json", **bearer(personas["agente"])),
        422,
    )  # fmt: skip
    assert "asunto" in cuerpo["errors"]


@pytest.mark.parametrize(
    ("quien", "status"),
    [("agente", 201), ("jefa", 201), ("staff", 201), ("staff_lector", 403), ("otro", 404),
     ("cliente", 404)],
)  # fmt: skip
def test_who_may_write(api, ticket, personas, quien, status):
    respuesta = api.post(
        f"/api/v1/tickets/{ticket.numero}/notas",
        {"texto": "hola"},
        format="json",
        **bearer(personas[quien]),
    )
    assert respuesta.status_code == status
    if status >= 400:
        problema(respuesta, status)


def test_a_read_only_scope_cannot_write_and_jwt_can(api, ticket, personas):
    url = f"/api/v1/tickets/{ticket.numero}/notas"
    solo_lectura = bearer(personas["agente"], "oauth", scope="read")
    assert api.get(f"/api/v1/tickets/{ticket.numero}", **solo_lectura).status_code == 200
    cuerpo = problema(api.post(url, {"texto": "x"}, format="json", **solo_lectura), 403)
    assert "scope" in cuerpo["detail"]
    sin_lectura = bearer(personas["agente"], "oauth", scope="profile")
    problema(api.get("/api/v1/tickets", **sin_lectura), 403)
    jwt = bearer(personas["agente"], "jwt")
    assert api.post(url, {"texto": "x"}, format="json", **jwt).status_code == 201


def test_malformed_oversized_and_wrong_bodies_are_problems(api, ticket, personas, settings):
    cabecera = bearer(personas["agente"])
    url = f"/api/v1/tickets/{ticket.numero}/notas"
    cuerpo = problema(
        api.generic("POST", url, b'{"texto": ', content_type="application/json", **cabecera), 400
    )
    assert cuerpo["instance"] == url
    problema(api.generic("POST", url, b"[1]", content_type="application/json", **cabecera), 400)
    problema(api.generic("POST", url, b"texto=x", content_type="text/plain", **cabecera), 415)
    settings.API_MAX_BODY_BYTES = 1000
    grande = json.dumps({"texto": "x" * 2000}).encode()
    problema(api.generic("POST", url, grande, content_type="application/json", **cabecera), 413)
    cuerpo = problema(api.post(url, {"texto": ""}, format="json", **cabecera), 422)
    assert "texto" in cuerpo["errors"]
    problema(api.post("/api/v1/tickets/999999/notas", {"texto": "x"}, format="json",
                      **cabecera), 404)  # fmt: skip
    problema(api.delete(f"/api/v1/tickets/{ticket.numero}", **cabecera), 405)


def test_unknown_paths_under_v1_are_404_problems(api, personas):
    cuerpo = problema(api.get("/api/v1/nada"), 404)
    assert cuerpo["instance"] == "/api/v1/nada"
    problema(api.get("/api/v1/tickets/abc", **bearer(personas["agente"])), 404)
    # Other families keep their envelopes.
    assert api.get("/api/integra/nada").json()["success"] is False


def test_domain_errors_are_problems_with_their_type(api, ticket, personas, buzon):
    cabecera = bearer(personas["agente"])
    base = f"/api/v1/tickets/{ticket.numero}"
    cuerpo = problema(api.post(f"{base}/fusionar", {"destino": ticket.numero}, format="json",
                               **cabecera), 422)  # fmt: skip
    assert cuerpo["type"] == "urn:incidencias:problema:fusion_invalida"
    otro = ingest_raw(correo(), cuenta=buzon).ticket
    hecho = api.post(f"{base}/fusionar", {"destino": otro.numero}, format="json", **cabecera)
    assert hecho.status_code == 200 and hecho.json()["numero"] == otro.numero
    cuerpo = problema(api.post(f"{base}/notas", {"texto": "x"}, format="json", **cabecera), 409)
    assert cuerpo["type"] == "urn:incidencias:problema:ticket_fusionado"
    Ticket.objects.filter(pk=otro.pk).update(solicitante_email="")
    cuerpo = problema(
        api.post(f"/api/v1/tickets/{otro.numero}/respuestas", {"texto": "x"}, format="json",
                 **cabecera),
        422,
    )  # fmt: skip
    assert cuerpo["type"] == "urn:incidencias:problema:sin_destinatario"
    cuerpo = problema(
        api.post(f"/api/v1/tickets/{otro.numero}/asignar", {"agente": personas["cliente"].pk},
                 format="json", **cabecera),
        422,
    )  # fmt: skip
    assert "agente" in cuerpo["errors"]


def test_transfer_and_merge_need_both_sides(api, ticket, personas, redes):
    cabecera = bearer(personas["agente"])
    ajeno = Ticket.objects.create(numero=9000, asunto="de redes", departamento=redes)
    cuerpo = problema(
        api.post(f"/api/v1/tickets/{ticket.numero}/fusionar", {"destino": ajeno.numero},
                 format="json", **cabecera),
        422,
    )  # fmt: skip
    assert "destino" in cuerpo["errors"]
    hecho = api.post(
        f"/api/v1/tickets/{ticket.numero}/transferir",
        {"departamento": redes.pk},
        format="json",
        **cabecera,
    )
    assert hecho.status_code == 200 and hecho.json()["departamento"]["nombre"] == "Redes"
    # Now it is Redes': Ana no longer sees it.
    problema(api.get(f"/api/v1/tickets/{ticket.numero}", **cabecera), 404)


# --- Attachments ----------------------------------------------------------------------------


def test_attachments_download_with_permission_and_as_attachment_unless_an_image(
    api, ticket, personas
):
    detalle = ticket_responder(
        ticket=ticket,
        autor=personas["agente"],
        texto="adjuntos",
        adjuntos=[
            AdjuntoNuevo("pagina.html", b"<script>alert(1)</script>", "text/html"),
            AdjuntoNuevo("foto.png", b"\x89PNG\r\n\x1a\nfake", "image/png"),
            AdjuntoNuevo("dibujo.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
        ],
    )
    html, png, svg = Adjunto.objects.filter(detalle=detalle).order_by("id")
    cabecera = bearer(personas["agente"])
    respuesta = api.get(f"/api/v1/adjuntos/{html.pk}", **cabecera)
    assert respuesta.status_code == 200
    assert respuesta["Content-Disposition"].startswith("attachment")
    assert respuesta["Content-Type"] == "application/octet-stream"
    assert respuesta["X-Content-Type-Options"] == "nosniff"
    assert b"".join(respuesta.streaming_content) == b"<script>alert(1)</script>"
    imagen = api.get(f"/api/v1/adjuntos/{png.pk}", **cabecera)
    assert imagen["Content-Disposition"].startswith("inline")
    assert imagen["Content-Type"] == "image/png"
    assert api.get(f"/api/v1/adjuntos/{svg.pk}", **cabecera)["Content-Disposition"].startswith(
        "attachment"
    )
    problema(api.get(f"/api/v1/adjuntos/{html.pk}", **bearer(personas["otro"])), 404)
    problema(api.get("/api/v1/adjuntos/999999", **cabecera), 404)
    problema(api.get(f"/api/v1/adjuntos/{html.pk}"), 401)


def test_a_notes_attachment_is_for_agents_only(api, ticket, personas, soporte):
    nota = DetalleTicket.objects.create(ticket=ticket, tipo="nota", texto="con adjunto")
    original = Adjunto.objects.filter(detalle__ticket=ticket).first()
    if original is None:
        ticket_responder(
            ticket=ticket, autor=personas["agente"], texto="x",
            adjuntos=[AdjuntoNuevo("a.txt", b"a", "text/plain")],
        )  # fmt: skip
        original = Adjunto.objects.filter(detalle__ticket=ticket).first()
    adjunto = Adjunto.objects.create(
        detalle=nota, nombre="interno.txt", content_type="text/plain", tamano=1,
        sha256=original.sha256, archivo=original.archivo.name,
    )  # fmt: skip
    vecino = Usuario.objects.create_user("vecino", "v@example.com", "x", departamento=soporte)
    Ticket.objects.filter(pk=ticket.pk).update(asignado=vecino)
    assert (
        api.get(f"/api/v1/adjuntos/{adjunto.pk}", **bearer(personas["agente"])).status_code == 200
    )
    problema(api.get(f"/api/v1/adjuntos/{adjunto.pk}", **bearer(vecino)), 404)


def test_the_v1_operations_are_in_the_schema(client):
    import yaml

    esquema = yaml.safe_load(client.get("/api/schema/").content)
    for ruta in (
        "/api/v1/tickets",
        "/api/v1/tickets/{numero}",
        "/api/v1/tickets/{numero}/respuestas",
        "/api/v1/tickets/{numero}/notas",
        "/api/v1/tickets/{numero}/asignar",
        "/api/v1/tickets/{numero}/estado",
        "/api/v1/tickets/{numero}/prioridad",
        "/api/v1/tickets/{numero}/transferir",
        "/api/v1/tickets/{numero}/fusionar",
        "/api/v1/adjuntos/{id}",
    ):
        assert ruta in esquema["paths"], ruta
    problema_404 = esquema["paths"]["/api/v1/tickets/{numero}"]["get"]["responses"]["404"]
    assert PROBLEMA in problema_404["content"]


def test_the_schema_generates_without_warnings_for_v1():
    import io

    from django.core.management import call_command

    salida, errores = io.StringIO(), io.StringIO()
    call_command("spectacular", "--validate", stdout=salida, stderr=errores)
    assert "Warning" not in errores.getvalue() and "Error" not in errores.getvalue()


def test_a_department_that_does_not_exist_or_is_inactive_is_refused(api, personas, soporte):
    Departamento.objects.filter(pk=soporte.pk).update(activo=False)
    cuerpo = problema(
        api.post("/api/v1/tickets", {"departamento": soporte.pk, "asunto": "a", "texto": "b"},
                 format="json", **bearer(personas["agente"])),
        422,
    )  # fmt: skip
    assert "departamento" in cuerpo["errors"]
