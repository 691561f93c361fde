"""The ticket page through Django's test client: who may open it, act on it and download its
files (404 for everyone else), what the thread shows (sanitised), the SLA timers, the notice
of other viewers, and a query count that does not grow with the thread."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias.models import Adjunto, DetalleTicket, Ticket
from sso.models import Usuario

pytestmark = pytest.mark.django_db


def _usuario(username, departamento, nombre="", **extra):
    return Usuario.objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="x",
        departamento=departamento,
        nombre=nombre,
        **extra,
    )


@pytest.fixture
def ana(soporte):
    return _usuario("ana", soporte, "Ana Mora", acceso_ticket=True)


@pytest.fixture
def jefa(soporte):
    return _usuario("jefa", soporte, "Julia Jefa", jefe=True)


@pytest.fixture
def luis(redes):
    """An agent of another department: must see nothing of Soporte's tickets."""
    return _usuario("luis", redes, "Luis Redes", acceso_ticket=True)


@pytest.fixture
def staff(db):
    return Usuario.objects.create_user(
        username="admin", email="admin@example.com", password="x", is_staff=True
    )


@pytest.fixture
def ticket(soporte):
    t = Ticket.objects.create(
        numero=501,
        asunto="La impresora no imprime",
        departamento=soporte,
        solicitante_nombre="Cliente",
        solicitante_email="cliente@example.org",
    )
    cache.delete(f"presencia:ticket:{t.pk}")
    yield t
    cache.delete(f"presencia:ticket:{t.pk}")


def _cliente(usuario=None, **kwargs):
    cliente = Client(**kwargs)
    if usuario is not None:
        cliente.force_login(usuario)
    return cliente


def _adjunto(detalle, nombre, content_type, contenido=b"datos", content_id=""):
    adjunto = Adjunto(
        detalle=detalle,
        nombre=nombre,
        content_type=content_type,
        tamano=len(contenido),
        sha256=f"{detalle.pk:032x}{len(nombre):032x}",
        content_id=content_id,
    )
    adjunto.archivo.save(nombre, ContentFile(contenido), save=False)
    adjunto.save()
    return adjunto


def _entrada(ticket, **campos):
    campos.setdefault("tipo", DetalleTicket.Tipo.ENTRANTE)
    return DetalleTicket.objects.create(ticket=ticket, **campos)


# --- Rights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "esperado"), [("ana", 200), ("jefa", 200), ("staff", 200), ("luis", 404)]
)
def test_it_opens_the_page_for_those_who_may_see_the_ticket(request, ticket, persona, esperado):
    usuario = request.getfixturevalue(persona)
    respuesta = _cliente(usuario).get(f"/tickets/{ticket.numero}/")
    assert respuesta.status_code == esperado
    if esperado == 200:
        assert "La impresora no imprime" in respuesta.content.decode()


def test_it_opens_a_ticket_of_another_department_assigned_to_the_agent(ticket, luis):
    Ticket.objects.filter(pk=ticket.pk).update(asignado=luis)
    assert _cliente(luis).get(f"/tickets/{ticket.numero}/").status_code == 200


def test_it_sends_anonymous_visitors_to_sign_in(ticket):
    respuesta = Client().get(f"/tickets/{ticket.numero}/")
    assert respuesta.status_code == 302
    assert "/oauth/login" in respuesta["Location"]
    respuesta = Client().post(f"/tickets/{ticket.numero}/estado", {"estado": "abierto"})
    assert respuesta.status_code == 302 and "/oauth/login" in respuesta["Location"]
    assert Client().get(f"/tickets/{ticket.numero}/presencia").status_code == 302


def test_it_answers_404_for_an_unknown_number(ana):
    assert _cliente(ana).get("/tickets/999999/").status_code == 404


@pytest.mark.parametrize("persona", ["ana", "jefa", "staff"])
def test_it_changes_the_state_for_those_who_may_see_the_ticket(request, ticket, persona):
    usuario = request.getfixturevalue(persona)
    respuesta = _cliente(usuario).post(f"/tickets/{ticket.numero}/estado", {"estado": "abierto"})
    assert respuesta.status_code == 302 and respuesta["Location"] == f"/tickets/{ticket.numero}/"
    ticket.refresh_from_db()
    assert ticket.estado == "abierto"
    evento = ticket.detalles.get(tipo="evento")
    assert evento.autor == usuario


def test_an_outsider_can_neither_change_the_state_nor_assign(ticket, luis, ana):
    cliente = _cliente(luis)
    assert (
        cliente.post(f"/tickets/{ticket.numero}/estado", {"estado": "cerrado"}).status_code == 404
    )
    assert cliente.post(f"/tickets/{ticket.numero}/asignar", {"agente": ana.pk}).status_code == 404
    ticket.refresh_from_db()
    assert (ticket.estado, ticket.asignado, ticket.detalles.count()) == ("nuevo", None, 0)


def test_it_assigns_to_an_agent_of_the_department_and_back_to_the_queue(ticket, ana, jefa):
    cliente = _cliente(jefa)
    respuesta = cliente.post(f"/tickets/{ticket.numero}/asignar", {"agente": ana.pk}, follow=True)
    assert "Asignado a Ana Mora." in respuesta.content.decode()
    ticket.refresh_from_db()
    assert ticket.asignado == ana
    cliente.post(f"/tickets/{ticket.numero}/asignar", {"agente": ""})
    ticket.refresh_from_db()
    assert ticket.asignado is None


def test_it_refuses_to_assign_to_someone_outside_the_department(ticket, ana, luis):
    respuesta = _cliente(ana).post(
        f"/tickets/{ticket.numero}/asignar", {"agente": luis.pk}, follow=True
    )
    assert "Elige uno de los agentes del departamento." in respuesta.content.decode()
    ticket.refresh_from_db()
    assert ticket.asignado is None


def test_it_refuses_an_unknown_state(ticket, ana):
    _cliente(ana).post(f"/tickets/{ticket.numero}/estado", {"estado": "borrado"})
    ticket.refresh_from_db()
    assert ticket.estado == "nuevo"


def test_actions_answer_post_only(ticket, ana):
    cliente = _cliente(ana)
    assert cliente.get(f"/tickets/{ticket.numero}/estado").status_code == 405
    assert cliente.get(f"/tickets/{ticket.numero}/asignar").status_code == 405


def test_a_post_without_the_csrf_token_is_refused(ticket, ana):
    cliente = _cliente(ana, enforce_csrf_checks=True)
    respuesta = cliente.post(f"/tickets/{ticket.numero}/estado", {"estado": "cerrado"})
    assert respuesta.status_code == 403
    ticket.refresh_from_db()
    assert ticket.estado == "nuevo"


# --- Downloads ------------------------------------------------------------------------------


@pytest.fixture
def archivos(ticket):
    entrada = _entrada(ticket, de="cliente@example.org", texto="Adjunto cosas")
    return {
        "pdf": _adjunto(entrada, "factura.pdf", "application/pdf", b"%PDF-1.4"),
        "png": _adjunto(entrada, "foto.png", "image/png", b"\x89PNG\r\n"),
        "svg": _adjunto(entrada, "dibujo.svg", "image/svg+xml", b"<svg onload='x()'/>"),
        "html": _adjunto(entrada, "pagina.html", "text/html", b"<script>x()</script>"),
    }


def test_it_downloads_a_file_as_an_attachment_with_nosniff(ticket, ana, archivos):
    respuesta = _cliente(ana).get(f"/tickets/{ticket.numero}/adjuntos/{archivos['pdf'].pk}")
    assert respuesta.status_code == 200
    assert respuesta["Content-Disposition"] == 'attachment; filename="factura.pdf"'
    assert respuesta["Content-Type"] == "application/octet-stream"
    assert respuesta["X-Content-Type-Options"] == "nosniff"
    assert b"".join(respuesta.streaming_content) == b"%PDF-1.4"


def test_it_shows_a_raster_image_inline(ticket, ana, archivos):
    respuesta = _cliente(ana).get(f"/tickets/{ticket.numero}/adjuntos/{archivos['png'].pk}")
    assert respuesta["Content-Type"] == "image/png"
    assert respuesta["Content-Disposition"].startswith("inline")
    assert respuesta["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("clave", ["svg", "html"])
def test_it_never_shows_svg_or_html_inline(ticket, ana, archivos, clave):
    respuesta = _cliente(ana).get(f"/tickets/{ticket.numero}/adjuntos/{archivos[clave].pk}")
    assert respuesta["Content-Disposition"].startswith("attachment")
    assert respuesta["Content-Type"] == "application/octet-stream"
    assert "sandbox" in respuesta["Content-Security-Policy"]


@pytest.mark.parametrize(("persona", "esperado"), [("jefa", 200), ("staff", 200), ("luis", 404)])
def test_downloads_follow_the_ticket_permission(request, ticket, archivos, persona, esperado):
    usuario = request.getfixturevalue(persona)
    url = f"/tickets/{ticket.numero}/adjuntos/{archivos['pdf'].pk}"
    assert _cliente(usuario).get(url).status_code == esperado
    assert Client().get(url).status_code == 302


def test_a_file_of_another_ticket_is_not_found_through_this_one(ticket, soporte, ana, archivos):
    otro = Ticket.objects.create(numero=502, asunto="Otro", departamento=soporte)
    url = f"/tickets/{otro.numero}/adjuntos/{archivos['pdf'].pk}"
    assert _cliente(ana).get(url).status_code == 404


# --- What the thread shows ------------------------------------------------------------------


def test_stored_scripts_and_handlers_never_reach_the_page(ticket, ana):
    _entrada(
        ticket,
        html='<p>Hola</p><script>alert(1)</script><img src="x" onerror="alert(2)">'
        '<a href="javascript:alert(3)">enlace</a>',
        texto="sin usar",
    )
    _entrada(ticket, tipo="nota", texto="<script>alert(4)</script><b onmouseover=x>nota</b>")
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    assert "<p>Hola</p>" in pagina
    for malo in ("alert(1)", "onerror", "javascript:", "<script>alert(4)", "<b onmouseover"):
        assert malo not in pagina
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in pagina


def test_inline_images_point_at_the_download_url(ticket, ana):
    entrada = _entrada(
        ticket, html='<p><img src="cid:logo@ejemplo" alt="logo"><img src="cid:otro@x"></p>'
    )
    logo = _adjunto(entrada, "logo.png", "image/png", content_id="<logo@ejemplo>")
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    assert f'<img src="/tickets/{ticket.numero}/adjuntos/{logo.pk}" alt="logo">' in pagina
    assert "cid:" not in pagina


def test_it_tells_the_kinds_of_entry_apart(ticket, ana):
    for tipo, texto in (
        ("entrante", "Pregunta"),
        ("respuesta", "Respuesta"),
        ("nota", "Nota"),
        ("evento", "Evento"),
    ):
        _entrada(ticket, tipo=tipo, texto=texto, autor=ana if tipo != "entrante" else None)
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    for clase, etiqueta in (
        ("entrada-entrante", "Correo entrante"),
        ("entrada-respuesta", "Respuesta enviada"),
        ("entrada-nota", "Nota interna"),
        ("entrada-evento", "Evento del sistema"),
    ):
        assert clase in pagina
        assert f'<span class="entrada-tipo">{etiqueta}</span>' in pagina


def test_the_query_count_does_not_grow_with_the_thread(ticket, ana, django_assert_num_queries):
    cliente = _cliente(ana)
    entrada = _entrada(ticket, texto="uno", autor=ana)
    _adjunto(entrada, "a.txt", "text/plain")
    cliente.get(f"/tickets/{ticket.numero}/")  # the session's first request writes it
    with CaptureQueriesContext(connection) as una:
        assert cliente.get(f"/tickets/{ticket.numero}/").status_code == 200
    for i in range(49):
        entrada = _entrada(ticket, tipo="respuesta", texto=f"respuesta {i}", autor=ana)
        _adjunto(entrada, f"a{i}.txt", "text/plain")
        _adjunto(entrada, f"b{i}.png", "image/png", content_id=f"<b{i}@x>")
    with django_assert_num_queries(len(una.captured_queries)):
        pagina = cliente.get(f"/tickets/{ticket.numero}/").content.decode()
    assert pagina.count('class="entrada entrada-') == 50


# --- SLA timers -----------------------------------------------------------------------------


def test_it_shows_the_sla_timers_as_text(ticket, ana):
    ahora = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        vence_primera_respuesta=ahora - timedelta(hours=2, minutes=5),
        vence_resolucion=ahora + timedelta(days=1, hours=3),
    )
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    pagina = pagina.replace("\xa0", " ")
    assert "Vencido hace 2 horas" in pagina
    assert "1 día, 2 horas restantes" in pagina or "1 día, 3 horas restantes" in pagina


def test_a_paused_clock_says_so_and_a_met_target_too(ticket, ana):
    ahora = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        estado="en_espera",
        primera_respuesta_en=ahora - timedelta(hours=3),
        vence_primera_respuesta=ahora - timedelta(hours=1),
        sla_pausado_en=ahora - timedelta(hours=1),
        vence_resolucion=ahora + timedelta(hours=5),
    )
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    pagina = pagina.replace("\xa0", " ")
    assert "Cumplido a tiempo" in pagina
    assert "En pausa: quedaban 6 horas" in pagina


# --- Presence -------------------------------------------------------------------------------


def test_it_tells_each_agent_who_else_has_the_ticket_open(ticket, ana, jefa):
    de_ana, de_jefa = _cliente(ana), _cliente(jefa)
    assert "también" not in de_ana.get(f"/tickets/{ticket.numero}/").content.decode()
    pagina = de_jefa.get(f"/tickets/{ticket.numero}/").content.decode()
    assert "Ana Mora también está viendo este ticket." in pagina
    sondeo = de_ana.get(f"/tickets/{ticket.numero}/presencia", HTTP_HX_REQUEST="true")
    assert "Julia Jefa también está viendo este ticket." in sondeo.content.decode()
    assert 'id="sla"' in sondeo.content.decode()  # the timers, refreshed out of band


def test_presence_writes_nothing_to_the_database(ticket, ana, django_assert_num_queries):
    cliente = _cliente(ana)
    cliente.get(f"/tickets/{ticket.numero}/presencia")
    with CaptureQueriesContext(connection) as consultas:
        cliente.get(f"/tickets/{ticket.numero}/presencia")
    escrituras = [
        q["sql"]
        for q in consultas.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]
    assert escrituras == []


def test_an_outsider_is_not_told_and_not_counted(ticket, ana, luis):
    _cliente(ana).get(f"/tickets/{ticket.numero}/")
    assert _cliente(luis).get(f"/tickets/{ticket.numero}/presencia").status_code == 404
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/presencia").content.decode()
    assert "Luis" not in pagina
