"""The agents' portal pages: dashboard, queue (filters, pages, bulk actions, saved filters) and
a ticket taken by hand, through Django's test client.

Personas: Ana works Soporte's tickets, Jefa heads Soporte, Beto works Redes' tickets, Sara is
staff (reads everything; works tickets only with `incidencias.change_ticket`), Olga has an
account but works no tickets.
"""

import itertools
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidencias.models import DetalleTicket, FiltroGuardado, Ticket
from sso.models import Usuario

_numeros = itertools.count(7000)


def persona(username, departamento=None, **campos) -> Usuario:
    return Usuario.objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="x",
        departamento=departamento,
        nombre=username.capitalize(),
        **campos,
    )


def ticket(departamento, asignado=None, **campos) -> Ticket:
    campos.setdefault("asunto", "Sin conexión")
    return Ticket.objects.create(
        numero=next(_numeros), departamento=departamento, asignado=asignado, **campos
    )


@pytest.fixture
def gente(soporte, redes):
    return {
        "ana": persona("ana", soporte, acceso_ticket=True),
        "jefa": persona("jefa", soporte, jefe=True),
        "beto": persona("beto", redes, acceso_ticket=True),
        "sara": persona("sara", is_staff=True),
        "olga": persona("olga", soporte),
    }


def cliente(usuario, **kwargs) -> Client:
    c = Client(**kwargs)
    c.force_login(usuario)
    return c


def numeros_en(respuesta) -> list[int]:
    """The ticket numbers of the queue's rows, in order."""
    html = respuesta.content.decode()
    return [int(n) for n in re.findall(r"<tr data-fila>.*?<td>(\d+)</td>", html, re.S)]


PAGINAS = ["tablero", "cola", "ticket-nuevo"]


# --- Who may open what ------------------------------------------------------------------------


@pytest.mark.parametrize("nombre", PAGINAS)
def test_it_sends_anonymous_users_to_sign_in(client, nombre, db):
    respuesta = client.get(reverse(nombre))
    assert respuesta.status_code == 302
    assert respuesta["Location"].startswith(reverse("sso:login"))


@pytest.mark.parametrize("nombre", PAGINAS)
def test_it_answers_404_to_someone_who_works_no_tickets(gente, nombre):
    assert cliente(gente["olga"]).get(reverse(nombre)).status_code == 404


@pytest.mark.parametrize(
    ("quien", "nombre", "esperado"),
    [
        ("ana", "tablero", 200),
        ("ana", "cola", 200),
        ("ana", "ticket-nuevo", 200),
        ("jefa", "tablero", 200),
        ("jefa", "cola", 200),
        ("jefa", "ticket-nuevo", 200),
        ("sara", "tablero", 200),
        ("sara", "cola", 200),
        ("sara", "ticket-nuevo", 404),  # staff without the permission only read
    ],
)
def test_each_persona_opens_the_pages_it_may(gente, quien, nombre, esperado):
    assert cliente(gente[quien]).get(reverse(nombre)).status_code == esperado


@pytest.mark.parametrize(
    ("nombre", "datos"),
    [
        ("cola-lote", {"tickets": ["1"], "accion": "estado", "estado": "abierto"}),
        ("cola-filtro-guardar", {"nombre": "Mío", "consulta": "asignado=me"}),
        ("ticket-nuevo", {"asunto": "x"}),
    ],
)
def test_actions_refuse_a_post_without_csrf(gente, nombre, datos):
    c = cliente(gente["ana"], enforce_csrf_checks=True)
    assert c.post(reverse(nombre), datos).status_code == 403


@pytest.mark.parametrize("nombre", ["cola-lote", "cola-filtro-guardar"])
def test_actions_only_take_a_post(gente, nombre):
    assert cliente(gente["ana"]).get(reverse(nombre)).status_code == 405


# --- Dashboard --------------------------------------------------------------------------------


def test_the_dashboard_shows_the_figures_and_links_into_the_queue(gente, soporte, redes):
    ana = gente["ana"]
    ticket(soporte, ana, estado=Ticket.Estado.ABIERTO, asunto="Impresora atascada")
    ticket(soporte, estado=Ticket.Estado.NUEVO)
    ticket(redes, estado=Ticket.Estado.NUEVO, asunto="Secreto de Redes")
    respuesta = cliente(ana).get(reverse("tablero"))
    assert respuesta.status_code == 200
    datos = respuesta.context["datos"]
    assert datos.mis_abiertos == 1
    assert datos.cola_por_estado["nuevo"] == 1
    assert datos.nuevos_hoy == 2
    html = respuesta.content.decode()
    assert "Secreto de Redes" not in html
    mios = respuesta.context["enlaces"]["mios"]
    assert mios.startswith("/tickets/?") and "asignado=me" in mios
    assert f'href="{mios.replace("&", "&amp;")}"' in html
    # The link lands on a queue holding exactly those tickets.
    assert numeros_en(cliente(ana).get(mios)) == [Ticket.objects.get(asignado=ana).numero]


def test_the_dashboard_shows_recent_activity_the_user_may_see(gente, soporte, redes):
    ana = gente["ana"]
    propio = ticket(soporte, asunto="Correo caído")
    ajeno = ticket(redes, asunto="Router de Redes")
    DetalleTicket.objects.create(ticket=propio, tipo="entrante", texto="hola", de="c@example.com")
    DetalleTicket.objects.create(ticket=ajeno, tipo="entrante", texto="hola", de="d@example.com")
    html = cliente(ana).get(reverse("tablero")).content.decode()
    assert f"#{propio.numero} Correo caído" in html
    assert "Router de Redes" not in html


def test_the_dashboard_costs_the_same_queries_for_one_ticket_or_fifty(
    gente, soporte, django_assert_num_queries
):
    ana = gente["ana"]
    c = cliente(ana)
    t = ticket(soporte, ana)
    DetalleTicket.objects.create(ticket=t, tipo="entrante", texto="hola")
    c.get(reverse("tablero"))  # session warm-up
    with CaptureQueriesContext(connection) as uno:
        c.get(reverse("tablero"))
    for _ in range(49):
        t = ticket(soporte, ana, estado=Ticket.Estado.ABIERTO)
        DetalleTicket.objects.create(ticket=t, tipo="nota", texto="nota", autor=ana)
    with django_assert_num_queries(len(uno)):
        respuesta = c.get(reverse("tablero"))
    assert respuesta.context["datos"].mis_abiertos == 50


# --- Queue ------------------------------------------------------------------------------------


def test_the_queue_shows_only_what_the_user_may_see(gente, soporte, redes):
    ana, beto = gente["ana"], gente["beto"]
    de_soporte = ticket(soporte)
    de_redes_para_ana = ticket(redes, ana)
    de_redes = ticket(redes, beto)
    vistos = set(numeros_en(cliente(ana).get(reverse("cola"))))
    assert vistos == {de_soporte.numero, de_redes_para_ana.numero}
    assert de_redes.numero not in vistos
    # Filtering by another department reveals nothing either.
    url = f"{reverse('cola')}?departamento={redes.pk}"
    assert numeros_en(cliente(ana).get(url)) == [de_redes_para_ana.numero]
    # Staff read every ticket.
    todos = set(numeros_en(cliente(gente["sara"]).get(reverse("cola"))))
    assert de_redes.numero in todos


def test_the_queue_filters_searches_and_sorts(gente, soporte):
    ana = gente["ana"]
    urgente = ticket(soporte, prioridad="urgente", asunto="Servidor caído", canal="portal")
    ticket(soporte, prioridad="baja", asunto="Cambio de clave", canal="correo")
    mio = ticket(soporte, ana, estado=Ticket.Estado.ABIERTO, asunto="Impresora")
    c = cliente(ana)
    url = reverse("cola")
    assert numeros_en(c.get(url, {"prioridad": "urgente"})) == [urgente.numero]
    assert numeros_en(c.get(url, {"canal": "portal"})) == [urgente.numero]
    assert numeros_en(c.get(url, {"asignado": "me"})) == [mio.numero]
    assert mio.numero not in numeros_en(c.get(url, {"asignado": "unassigned"}))
    assert numeros_en(c.get(url, {"estado": ["abierto", "en_espera"]})) == [mio.numero]
    assert numeros_en(c.get(url, {"q": "servidor"})) == [urgente.numero]
    assert numeros_en(c.get(url, {"orden": "prioridad"}))[0] == urgente.numero
    assert numeros_en(c.get(url, {"orden": "-creado"}))[0] == mio.numero


def test_the_queue_pages_with_an_opaque_cursor_both_ways(gente, soporte):
    creados = [ticket(soporte).numero for _ in range(52)]
    c = cliente(gente["ana"])
    primera = c.get(reverse("cola"), {"orden": "creado", "prioridad": "normal"})
    assert numeros_en(primera) == creados[:50]
    assert primera.context["anterior"] is None
    siguiente = primera.context["siguiente"]
    assert "orden=creado" in siguiente and "prioridad=normal" in siguiente
    segunda = c.get(siguiente)
    assert numeros_en(segunda) == creados[50:]
    assert segunda.context["siguiente"] is None
    assert numeros_en(c.get(segunda.context["anterior"])) == creados[:50]
    # A cursor that is not ours is refused, with the page still drawn.
    malo = c.get(reverse("cola"), {"cursor": "no-es-un-cursor"})
    assert malo.status_code == 400
    assert numeros_en(malo) == []


def test_the_queue_refuses_an_unknown_filter_value_with_a_message(gente):
    respuesta = cliente(gente["ana"]).get(reverse("cola"), {"estado": "inventado"})
    assert respuesta.status_code == 400
    assert list(respuesta.context["messages"])


def test_htmx_gets_only_the_results(gente, soporte):
    ticket(soporte, asunto="Parcial")
    c = cliente(gente["ana"])
    parcial = c.get(reverse("cola"), {"q": "Parcial"}, HTTP_HX_REQUEST="true")
    html = parcial.content.decode()
    assert parcial.status_code == 200
    assert "<html" not in html and "Parcial" in html and 'id="lote"' in html
    assert "HX-Request" in parcial["Vary"]
    # A history restore needs the whole page.
    entera = c.get(reverse("cola"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in entera.content.decode()


def test_the_queue_costs_the_same_queries_for_one_row_or_fifty(
    gente, soporte, django_assert_num_queries
):
    ana = gente["ana"]
    c = cliente(ana)
    FiltroGuardado.objects.create(usuario=ana, nombre="Míos", consulta="asignado=me")
    t = ticket(soporte, ana)
    DetalleTicket.objects.create(ticket=t, tipo="entrante", texto="hola")
    c.get(reverse("cola"))
    with CaptureQueriesContext(connection) as uno:
        respuesta = c.get(reverse("cola"))
    assert len(numeros_en(respuesta)) == 1
    for i in range(49):
        t = ticket(soporte, ana if i % 2 else None, asunto=f"Caso {i}")
        DetalleTicket.objects.create(ticket=t, tipo="entrante", texto="hola")
    with django_assert_num_queries(len(uno)):
        respuesta = c.get(reverse("cola"))
    assert len(numeros_en(respuesta)) == 50


# --- Bulk actions -----------------------------------------------------------------------------


def test_bulk_assign_changes_only_the_tickets_the_user_may_work(gente, soporte, redes):
    ana, jefa = gente["ana"], gente["jefa"]
    a, b = ticket(soporte), ticket(soporte)
    ajeno = ticket(redes)
    respuesta = cliente(ana).post(
        reverse("cola-lote"),
        {
            "tickets": [a.pk, b.pk, ajeno.pk],
            "accion": "asignar",
            "agente": jefa.pk,
            "siguiente": "/tickets/?estado=nuevo",
        },
        follow=True,
    )
    assert respuesta.redirect_chain[-1][0] == "/tickets/?estado=nuevo"
    mensaje = " ".join(str(m) for m in respuesta.context["messages"])
    assert "2" in mensaje and "1" in mensaje
    a.refresh_from_db(), b.refresh_from_db(), ajeno.refresh_from_db()
    assert a.asignado == jefa and b.asignado == jefa
    assert ajeno.asignado is None
    eventos = DetalleTicket.objects.filter(ticket__in=[a, b], tipo="evento", autor=ana)
    assert eventos.count() == 2
    assert not DetalleTicket.objects.filter(ticket=ajeno).exists()


def test_bulk_assign_to_me_and_back_to_the_queue(gente, soporte):
    ana = gente["ana"]
    a = ticket(soporte)
    c = cliente(ana)
    c.post(reverse("cola-lote"), {"tickets": [a.pk], "accion": "asignar", "agente": "me"})
    a.refresh_from_db()
    assert a.asignado == ana
    c.post(reverse("cola-lote"), {"tickets": [a.pk], "accion": "asignar", "agente": "unassigned"})
    a.refresh_from_db()
    assert a.asignado is None


def test_bulk_state_change_writes_the_thread_events(gente, soporte):
    jefa = gente["jefa"]
    a = ticket(soporte)
    b = ticket(soporte, estado=Ticket.Estado.ABIERTO)
    respuesta = cliente(jefa).post(
        reverse("cola-lote"),
        {"tickets": [a.pk, b.pk], "accion": "estado", "estado": "abierto"},
        follow=True,
    )
    a.refresh_from_db()
    assert a.estado == "abierto"
    assert DetalleTicket.objects.filter(ticket=a, tipo="evento", autor=jefa).count() == 1
    assert not DetalleTicket.objects.filter(ticket=b).exists()
    mensaje = " ".join(str(m) for m in respuesta.context["messages"])
    assert re.search(r"\b1\b", mensaje)


def test_bulk_actions_refuse_an_agent_outside_the_list_and_empty_choices(gente, soporte):
    ana, beto = gente["ana"], gente["beto"]
    a = ticket(soporte)
    c = cliente(ana)
    respuesta = c.post(
        reverse("cola-lote"),
        {"tickets": [a.pk], "accion": "asignar", "agente": beto.pk},
        follow=True,
    )
    assert list(respuesta.context["messages"])
    a.refresh_from_db()
    assert a.asignado is None
    respuesta = c.post(reverse("cola-lote"), {"accion": "estado", "estado": "abierto"}, follow=True)
    assert list(respuesta.context["messages"])
    respuesta = c.post(reverse("cola-lote"), {"tickets": [a.pk], "accion": "estado"}, follow=True)
    a.refresh_from_db()
    assert a.estado == Ticket.Estado.NUEVO


def test_staff_without_the_permission_change_nothing_in_bulk(gente, soporte):
    sara = gente["sara"]
    a = ticket(soporte)
    c = cliente(sara)
    c.post(reverse("cola-lote"), {"tickets": [a.pk], "accion": "estado", "estado": "abierto"})
    a.refresh_from_db()
    assert a.estado == Ticket.Estado.NUEVO
    sara.user_permissions.add(Permission.objects.get(codename="change_ticket"))
    c = cliente(Usuario.objects.get(pk=sara.pk))
    c.post(reverse("cola-lote"), {"tickets": [a.pk], "accion": "estado", "estado": "abierto"})
    a.refresh_from_db()
    assert a.estado == Ticket.Estado.ABIERTO


def test_an_action_never_redirects_outside_the_queue(gente, soporte):
    a = ticket(soporte)
    for destino in ("https://malo.example.com/tickets/", "//malo.example.com/", "/admin/"):
        respuesta = cliente(gente["ana"]).post(
            reverse("cola-lote"),
            {"tickets": [a.pk], "accion": "estado", "estado": "abierto", "siguiente": destino},
        )
        assert respuesta["Location"] == reverse("cola")


# --- Saved filters ----------------------------------------------------------------------------


def test_an_agent_saves_lists_reuses_and_deletes_a_filter(gente, soporte):
    ana, beto = gente["ana"], gente["beto"]
    mio = ticket(soporte, ana, prioridad="alta")
    ticket(soporte, prioridad="alta")
    c = cliente(ana)
    respuesta = c.post(
        reverse("cola-filtro-guardar"),
        {"nombre": "Mis altas", "consulta": "asignado=me&prioridad=alta&cursor=x", "orden": "sla"},
        follow=True,
    )
    filtro = FiltroGuardado.objects.get(usuario=ana)
    assert filtro.nombre == "Mis altas" and "cursor" not in filtro.consulta
    html = respuesta.content.decode()
    assert "Mis altas" in html
    enlace = re.search(r'<a href="(/tickets/\?[^"]*)">Mis altas</a>', html).group(1)
    assert numeros_en(c.get(enlace.replace("&amp;", "&"))) == [mio.numero]

    # Nobody else sees it or may delete it.
    assert "Mis altas" not in cliente(beto).get(reverse("cola")).content.decode()
    borrar = reverse("cola-filtro-borrar", args=[filtro.pk])
    assert cliente(beto).post(borrar).status_code == 404
    assert cliente(gente["olga"]).post(borrar).status_code == 404
    assert c.post(borrar).status_code == 302
    assert not FiltroGuardado.objects.exists()


def test_a_filter_needs_a_name_and_known_values(gente):
    c = cliente(gente["ana"])
    respuesta = c.post(reverse("cola-filtro-guardar"), {"nombre": "", "consulta": ""}, follow=True)
    assert list(respuesta.context["messages"])
    respuesta = c.post(
        reverse("cola-filtro-guardar"), {"nombre": "Raro", "consulta": "estado=x"}, follow=True
    )
    assert list(respuesta.context["messages"])
    assert not FiltroGuardado.objects.exists()


# --- New ticket -------------------------------------------------------------------------------


def test_an_agent_takes_a_ticket_by_hand(gente, soporte):
    ana = gente["ana"]
    respuesta = cliente(ana).post(
        reverse("ticket-nuevo"),
        {
            "solicitante_nombre": "Carla Cliente",
            "solicitante_email": "carla@example.com",
            "departamento": soporte.pk,
            "asunto": "Llamada: no imprime",
            "texto": "La impresora del segundo piso no imprime.",
            "prioridad": "alta",
        },
    )
    creado = Ticket.objects.get(asunto="Llamada: no imprime")
    assert respuesta.status_code == 302
    assert respuesta["Location"] == f"/tickets/{creado.numero}/"
    assert creado.canal == Ticket.Canal.PORTAL
    assert creado.prioridad == "alta" and creado.departamento == soporte
    assert creado.solicitante_email == "carla@example.com"
    assert creado.detalles.filter(texto__contains="segundo piso").exists()


def test_a_ticket_by_hand_only_goes_to_a_department_the_user_works(gente, soporte, redes):
    respuesta = cliente(gente["ana"]).post(
        reverse("ticket-nuevo"),
        {
            "solicitante_nombre": "Carla",
            "departamento": redes.pk,
            "asunto": "Intruso",
            "texto": "x",
            "prioridad": "normal",
        },
    )
    assert respuesta.status_code == 200
    assert respuesta.context["form"].errors["departamento"]
    assert not Ticket.objects.filter(asunto="Intruso").exists()


def test_a_ticket_by_hand_shows_the_missing_fields(gente):
    respuesta = cliente(gente["ana"]).post(reverse("ticket-nuevo"), {"prioridad": "normal"})
    assert respuesta.status_code == 200
    errores = respuesta.context["form"].errors
    assert {"asunto", "texto", "solicitante_nombre"} <= set(errores)
    assert not Ticket.objects.exists()


def test_staff_with_the_permission_take_tickets_for_any_department(gente, redes):
    sara = gente["sara"]
    sara.user_permissions.add(Permission.objects.get(codename="change_ticket"))
    c = cliente(Usuario.objects.get(pk=sara.pk))
    respuesta = c.get(reverse("ticket-nuevo"))
    opciones = [str(d) for d in respuesta.context["form"].fields["departamento"].queryset]
    assert opciones == ["Redes", "Soporte"]


def test_the_filter_form_sent_without_javascript_works(gente, soporte):
    urgente = ticket(soporte, prioridad="urgente")
    ticket(soporte)
    datos = "q=&departamento=&prioridad=urgente&asignado=&sla=&canal=&orden=sla"
    respuesta = cliente(gente["ana"]).get(f"{reverse('cola')}?{datos}")
    assert respuesta.status_code == 200
    assert numeros_en(respuesta) == [urgente.numero]


def test_the_navigation_marks_only_the_page_open(gente):
    respuesta = cliente(gente["ana"]).get(reverse("ticket-nuevo"))
    actuales = [e["url"] for e in respuesta.context["navegacion"] if e["actual"]]
    assert actuales == [reverse("ticket-nuevo")]
    respuesta = cliente(gente["ana"]).get(reverse("cola"))
    assert [e["url"] for e in respuesta.context["navegacion"] if e["actual"]] == [reverse("cola")]
