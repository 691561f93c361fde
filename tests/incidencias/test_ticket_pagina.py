"""The ticket page through Django's test client: who may open it, act on it and download its
files (404 for everyone else), what the thread shows (sanitised), the SLA timers, the notice
of other viewers, and a query count that does not grow with the thread."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias.models import Adjunto, DetalleTicket, Notificacion, RespuestaPredefinida, Ticket
from sso.models import Departamento, Usuario

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
    """Staff with the permission to change tickets: sees and works every ticket."""
    usuario = Usuario.objects.create_user(
        username="admin", email="admin@example.com", password="x", is_staff=True
    )
    usuario.user_permissions.add(Permission.objects.get(codename="change_ticket"))
    return Usuario.objects.get(pk=usuario.pk)


@pytest.fixture
def lector(db):
    """Staff without that permission: reads every ticket, changes none."""
    return Usuario.objects.create_user(
        username="lector", email="lector@example.com", password="x", is_staff=True
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


ACCIONES = {
    "responder": {"texto": "Hola"},
    "nota": {"texto": "Nota"},
    "asignar": {"agente": ""},
    "estado": {"estado": "cerrado"},
    "prioridad": {"prioridad": "urgente"},
    "transferir": {"departamento": "0"},
    "fusionar": {"destino": "1", "confirmar": "on"},
}


@pytest.mark.parametrize("accion", sorted(ACCIONES))
@pytest.mark.parametrize(("persona", "esperado"), [("luis", 404), ("lector", 403)])
def test_outsiders_and_readers_change_nothing(request, ticket, redes, persona, esperado, accion):
    datos = dict(ACCIONES[accion])
    if accion == "transferir":
        datos["departamento"] = str(redes.pk)
    cliente = _cliente(request.getfixturevalue(persona))
    respuesta = cliente.post(f"/tickets/{ticket.numero}/{accion}", datos)
    assert respuesta.status_code == esperado
    antes = ticket.departamento_id
    ticket.refresh_from_db()
    assert (ticket.estado, ticket.prioridad, ticket.departamento_id) == ("nuevo", "normal", antes)
    assert ticket.detalles.count() == 0 and Notificacion.objects.count() == 0


@pytest.mark.parametrize("accion", sorted(ACCIONES))
def test_anonymous_actions_go_to_the_sign_in_page(ticket, accion):
    respuesta = Client().post(f"/tickets/{ticket.numero}/{accion}", ACCIONES[accion])
    assert respuesta.status_code == 302 and "/oauth/login" in respuesta["Location"]


def test_a_reader_sees_no_forms(ticket, lector):
    pagina = _cliente(lector).get(f"/tickets/{ticket.numero}/").content.decode()
    assert "Puedes leer este ticket pero no trabajarlo." in pagina
    assert f'action="/tickets/{ticket.numero}/responder"' not in pagina
    assert f'action="/tickets/{ticket.numero}/estado"' not in pagina


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


@pytest.mark.parametrize("accion", sorted(ACCIONES))
def test_actions_answer_post_only(ticket, ana, accion):
    assert _cliente(ana).get(f"/tickets/{ticket.numero}/{accion}").status_code == 405


@pytest.mark.parametrize("accion", sorted(ACCIONES))
def test_a_post_without_the_csrf_token_is_refused(ticket, ana, accion):
    cliente = _cliente(ana, enforce_csrf_checks=True)
    respuesta = cliente.post(f"/tickets/{ticket.numero}/{accion}", ACCIONES[accion])
    assert respuesta.status_code == 403
    ticket.refresh_from_db()
    assert ticket.estado == "nuevo" and ticket.detalles.count() == 0


# --- Work on the ticket ---------------------------------------------------------------------


def test_it_queues_a_reply_with_cc_attachments_and_a_new_state(ticket, ana):
    archivo = SimpleUploadedFile("informe.txt", b"contenido", content_type="text/plain")
    respuesta = _cliente(ana).post(
        f"/tickets/{ticket.numero}/responder",
        {"texto": "Ya está resuelto.", "cc": "jefe@example.org", "adjuntos": [archivo],
         "estado": "en_espera"},
        follow=True,
    )  # fmt: skip
    assert "Respuesta enviada a cliente@example.org." in respuesta.content.decode()
    (entrada,) = ticket.detalles.filter(tipo="respuesta")
    assert (entrada.autor, entrada.texto, entrada.cc) == (
        ana,
        "Ya está resuelto.",
        "jefe@example.org",
    )
    assert [a.nombre for a in entrada.adjuntos.all()] == ["informe.txt"]
    ticket.refresh_from_db()
    assert ticket.estado == "en_espera" and ticket.primera_respuesta_en is not None
    correo = Notificacion.objects.get(evento="respuesta")
    assert (correo.correo, correo.detalle, correo.estado) == (
        "cliente@example.org",
        entrada,
        "pendiente",
    )


def test_a_reply_with_a_bad_cc_or_too_much_attached_is_shown_back(ticket, ana, settings):
    settings.TICKET_ADJUNTOS_MAX_BYTES = 10
    cliente = _cliente(ana)
    respuesta = cliente.post(
        f"/tickets/{ticket.numero}/responder", {"texto": "Texto escrito", "cc": "no-es-correo"}
    )
    assert respuesta.status_code == 400
    pagina = respuesta.content.decode()
    assert "no-es-correo no es una dirección de correo." in pagina
    assert "Texto escrito</textarea>" in pagina
    grande = SimpleUploadedFile("grande.bin", b"x" * 11)
    respuesta = cliente.post(
        f"/tickets/{ticket.numero}/responder", {"texto": "Texto", "adjuntos": [grande]}
    )
    assert respuesta.status_code == 400
    assert "Los adjuntos suman más de 10" in respuesta.content.decode()
    assert not ticket.detalles.exists() and not Notificacion.objects.exists()


def test_a_reply_to_a_ticket_without_an_address_says_why(ticket, ana):
    Ticket.objects.filter(pk=ticket.pk).update(solicitante_email="")
    respuesta = _cliente(ana).post(f"/tickets/{ticket.numero}/responder", {"texto": "Hola"})
    assert respuesta.status_code == 400
    assert not ticket.detalles.exists()


def test_a_note_is_never_mailed(ticket, ana):
    respuesta = _cliente(ana).post(f"/tickets/{ticket.numero}/nota", {"texto": "Llamé al cliente."})
    assert respuesta.status_code == 302
    (nota,) = ticket.detalles.all()
    assert (nota.tipo, nota.autor, nota.texto) == ("nota", ana, "Llamé al cliente.")
    assert not Notificacion.objects.exists()
    pagina = _cliente(ana).get(f"/tickets/{ticket.numero}/").content.decode()
    assert "Llamé al cliente." in pagina


def test_it_changes_the_priority_and_transfers(ticket, ana, redes):
    cliente = _cliente(ana)
    cerrado = Departamento.objects.create(nombre="Cerrado", activo=False)
    pagina = cliente.get(f"/tickets/{ticket.numero}/").content.decode()
    assert f'value="{redes.pk}"' in pagina and "Cerrado" not in pagina  # active ones only
    cliente.post(f"/tickets/{ticket.numero}/transferir", {"departamento": cerrado.pk})
    ticket.refresh_from_db()
    assert ticket.departamento != cerrado
    cliente.post(f"/tickets/{ticket.numero}/prioridad", {"prioridad": "urgente"})
    ticket.refresh_from_db()
    assert ticket.prioridad == "urgente"
    respuesta = cliente.post(f"/tickets/{ticket.numero}/transferir", {"departamento": redes.pk})
    ticket.refresh_from_db()
    assert ticket.departamento == redes
    # Ana no longer sees it: she is not sent back to a page that would answer 404.
    assert respuesta["Location"] != f"/tickets/{ticket.numero}/"


def test_it_merges_only_when_confirmed_and_into_a_ticket_the_agent_sees(
    ticket, soporte, redes, ana
):
    destino = Ticket.objects.create(numero=600, asunto="El mismo problema", departamento=soporte)
    ajeno = Ticket.objects.create(numero=700, asunto="Otro departamento", departamento=redes)
    cliente = _cliente(ana)
    cliente.post(f"/tickets/{ticket.numero}/fusionar", {"destino": destino.numero})
    cliente.post(f"/tickets/{ticket.numero}/fusionar", {"destino": ajeno.numero, "confirmar": "on"})
    ticket.refresh_from_db()
    assert ticket.fusionado_en is None
    respuesta = cliente.post(
        f"/tickets/{ticket.numero}/fusionar", {"destino": destino.numero, "confirmar": "on"}
    )
    assert respuesta["Location"] == f"/tickets/{destino.numero}/"
    ticket.refresh_from_db()
    assert (ticket.relacionado, ticket.estado) == (destino, "cerrado")
    pagina = cliente.get(f"/tickets/{ticket.numero}/").content.decode()
    assert "Este ticket se fusionó en el ticket #600." in pagina


def test_a_merge_refused_by_the_service_is_told(ticket, ana):
    respuesta = _cliente(ana).post(
        f"/tickets/{ticket.numero}/fusionar",
        {"destino": ticket.numero, "confirmar": "on"},
        follow=True,
    )
    assert "Un ticket no se puede fusionar consigo mismo." in respuesta.content.decode()


def test_a_canned_response_fills_the_reply_with_and_without_htmx(ticket, ana, soporte):
    canned = RespuestaPredefinida.objects.create(
        nombre="Saludo",
        departamento=soporte,
        texto="Hola {{ solicitante.nombre }}, sobre el ticket {{ ticket.numero }}: <b>",
    )
    RespuestaPredefinida.objects.create(nombre="Inactiva", texto="x", activa=False)
    cliente = _cliente(ana)
    pagina = cliente.get(f"/tickets/{ticket.numero}/?predefinida={canned.pk}").content.decode()
    assert "Hola Cliente, sobre el ticket 501: &lt;b&gt;</textarea>" in pagina
    assert "Inactiva" not in pagina
    parcial = cliente.get(
        f"/tickets/{ticket.numero}/predefinida?predefinida={canned.pk}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert parcial.strip().startswith("<textarea") and "ticket 501: &lt;b&gt;" in parcial
    assert cliente.get(f"/tickets/{ticket.numero}/predefinida?predefinida=999").status_code == 404


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


def test_sanitised_bodies_come_from_the_cache_until_what_they_depend_on_changes(
    ticket, ana, monkeypatch
):
    import nh3

    from incidencias import views_ticket

    entrada = _entrada(ticket, html='<p>Hola <img src="cid:logo@x"></p><script>x</script>')
    logo = _adjunto(entrada, "logo.png", "image/png", content_id="<logo@x>")
    llamadas = []
    limpiar = nh3.clean

    def contar(html, **opciones):
        llamadas.append(html)
        return limpiar(html, **opciones)

    monkeypatch.setattr(views_ticket.nh3, "clean", contar)
    cliente = _cliente(ana)
    primera = cliente.get(f"/tickets/{ticket.numero}/").content.decode()
    segunda = cliente.get(f"/tickets/{ticket.numero}/").content.decode()
    imagen = f'<img src="/tickets/{ticket.numero}/adjuntos/{logo.pk}">'
    assert imagen in primera and imagen in segunda and "<script>" not in segunda
    assert len(llamadas) == 1  # the second view read it from the cache
    # The image URLs name the ticket: a new number is a new key, never the old URL.
    Ticket.objects.filter(pk=ticket.pk).update(numero=502)
    tercera = cliente.get("/tickets/502/").content.decode()
    assert f'<img src="/tickets/502/adjuntos/{logo.pk}">' in tercera
    assert len(llamadas) == 2
    # Bodies too large for the cache are sanitised on every view.
    monkeypatch.setattr(views_ticket, "_SANEADO_MAX_CACHE", 10)
    cliente.get("/tickets/502/")
    cliente.get("/tickets/502/")
    assert len(llamadas) == 4


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


def test_the_query_count_does_not_grow_with_the_thread(
    ticket, ana, django_assert_num_queries, settings
):
    settings.SESSION_IDLE_MINUTES = 0  # no session write (the activity stamp) in the counts
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


def test_leaving_the_page_takes_the_agent_off_it_at_once(ticket, ana, jefa, luis):
    import re

    de_ana, de_jefa = _cliente(ana), _cliente(jefa)

    def vista(pagina) -> str:
        return re.search(r'data-vista="([^"]+)"', pagina).group(1)

    primera = vista(de_ana.get(f"/tickets/{ticket.numero}/").content.decode())
    salir = f"/tickets/{ticket.numero}/presencia/salir"
    assert de_ana.get(salir).status_code == 405  # a POST, with its CSRF token
    assert _cliente(ana, enforce_csrf_checks=True).post(salir).status_code == 403
    assert _cliente(luis).post(salir, {"vista": primera}).status_code == 404  # outside his sight
    assert Client().post(salir).status_code == 302  # to the sign-in page
    pagina = de_jefa.get(f"/tickets/{ticket.numero}/").content.decode()
    assert "Ana Mora también está viendo este ticket." in pagina
    assert f'data-salir="{salir}"' in pagina  # where the page's beacon goes

    # A reload: the new view marks Ana before the old one's beacon arrives; she stays.
    segunda = vista(de_ana.get(f"/tickets/{ticket.numero}/").content.decode())
    assert segunda != primera
    assert de_ana.post(salir, {"vista": primera}).status_code == 204
    assert de_ana.post(salir).status_code == 204  # no view: nothing removed either
    assert "Ana Mora" in de_jefa.get(f"/tickets/{ticket.numero}/presencia").content.decode()
    # Her poll carries its view; leaving from that view takes her off.
    de_ana.get(f"/tickets/{ticket.numero}/presencia", {"vista": segunda})
    assert de_ana.post(salir, {"vista": segunda}).status_code == 204
    assert "Ana Mora" not in de_jefa.get(f"/tickets/{ticket.numero}/presencia").content.decode()
    assert de_ana.post(salir, {"vista": segunda}).status_code == 204  # twice is no error
