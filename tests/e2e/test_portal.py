"""The agents' portal in a real browser: dashboard → queue, filters and search swapped in by
htmx, the keyboard (j/k/x/o, /, the ? help), bulk assignment and state change, a saved filter
reused, a ticket taken by hand; every page audited with axe and photographed, the queue also at
a phone's width."""

import itertools
import re

import pytest
from playwright.sync_api import expect

from incidencias.models import DetalleTicket, FiltroGuardado, Ticket
from sso.models import Departamento, Usuario

_numeros = itertools.count(100)


def _ticket(departamento, **campos) -> Ticket:
    return Ticket.objects.create(numero=next(_numeros), departamento=departamento, **campos)


@pytest.fixture
def oficina(transactional_db):
    soporte = Departamento.objects.create(nombre="Soporte")
    redes = Departamento.objects.create(nombre="Redes")
    ana = Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password="x",
        nombre="Ana Mora",
        departamento=soporte,
        acceso_ticket=True,
    )
    luis = Usuario.objects.create_user(
        username="luis",
        email="luis@example.com",
        password="x",
        nombre="Luis Vega",
        departamento=soporte,
        acceso_ticket=True,
    )
    tickets = [
        _ticket(
            soporte,
            asunto="Servidor de correo caído",
            prioridad="urgente",
            canal="correo",
            solicitante_nombre="Carla Ruiz",
        ),
        _ticket(
            soporte,
            asunto="Impresora sin tóner",
            prioridad="baja",
            canal="portal",
            solicitante_email="pedro@example.com",
        ),
        _ticket(
            soporte,
            asunto="VPN lenta",
            asignado=ana,
            estado="abierto",
            solicitante_nombre="Marta Solís",
        ),
        _ticket(soporte, asunto="Cambio de contraseña", solicitante_nombre="Jorge Pax"),
        _ticket(redes, asunto="Switch del piso 3"),
    ]
    DetalleTicket.objects.create(
        ticket=tickets[0], tipo="entrante", texto="No llega el correo", de="carla@example.com"
    )
    return {"soporte": soporte, "ana": ana, "luis": luis, "tickets": tickets}


def _filas(pagina):
    return pagina.locator("[data-cola] tr[data-fila]")


def test_an_agent_goes_from_the_dashboard_to_the_queue_and_works_it_by_keyboard(
    pagina, entrar, oficina, auditar, captura
):
    entrar(pagina, oficina["ana"])
    pagina.goto("/")
    pagina.get_by_role("heading", name="Panel", exact=True).wait_for()
    auditar(pagina, contexto="(dashboard)")
    captura(pagina, "portal-tablero")

    # "My open tickets" leads to the queue filtered to them.
    pagina.locator(".cifra a").first.click()
    pagina.wait_for_url(re.compile(r"/tickets/\?.*asignado=me"))
    assert _filas(pagina).count() == 1
    assert "VPN lenta" in _filas(pagina).first.inner_text()

    pagina.goto("/tickets/")
    assert _filas(pagina).count() == 4  # Soporte's, not Redes'
    auditar(pagina, contexto="(queue)")
    captura(pagina, "portal-cola")
    # axe leaves empty style attributes behind, which htmx's settling would copy (and the
    # Content-Security-Policy refuse): the steps below start from a fresh page.
    pagina.reload()

    # A filter swaps the table in place and the address follows (shareable).
    pagina.get_by_label("Prioridad").select_option("urgente")
    pagina.wait_for_url(re.compile(r"prioridad=urgente"))
    _filas(pagina).filter(has_text="Impresora").wait_for(state="detached")
    assert _filas(pagina).count() == 1
    pagina.get_by_label("Prioridad").select_option("")
    expect(_filas(pagina)).to_have_count(4)

    # / focuses the search box; Enter searches.
    pagina.locator("body").click(position={"x": 5, "y": 5})
    pagina.keyboard.press("/")
    buscar = pagina.locator("[data-buscar]")
    assert buscar.evaluate("e => e === document.activeElement")
    buscar.fill("impresora")
    buscar.press("Enter")
    pagina.wait_for_url(re.compile(r"q=impresora"))
    _filas(pagina).filter(has_text="VPN").wait_for(state="detached")
    assert _filas(pagina).count() == 1
    pagina.reload()  # the address holds the whole state
    assert _filas(pagina).count() == 1 and buscar.input_value() == "impresora"

    # j/k move, x checks, ? shows the help, o opens.
    pagina.goto("/tickets/?orden=creado")
    pagina.locator("h1").click()
    pagina.keyboard.press("j")
    pagina.keyboard.press("j")
    pagina.keyboard.press("k")
    primera = _filas(pagina).nth(0)
    assert primera.get_attribute("aria-current") == "true"
    assert primera.locator("[data-abrir]").evaluate("e => e === document.activeElement")
    pagina.keyboard.press("j")
    pagina.keyboard.press("x")
    assert _filas(pagina).nth(1).locator("[data-marcar]").is_checked()
    assert not primera.locator("[data-marcar]").is_checked()

    pagina.keyboard.press("?")
    dialogo = pagina.locator("dialog#atajos")
    dialogo.wait_for(state="visible")
    auditar(pagina, contexto="(shortcuts help)")
    captura(pagina, "portal-cola-atajos")
    pagina.keyboard.press("Escape")
    dialogo.wait_for(state="hidden")

    numero = oficina["tickets"][1].numero
    _filas(pagina).nth(1).locator("[data-abrir]").focus()
    pagina.keyboard.press("o")
    pagina.wait_for_url(f"**/tickets/{numero}/")
    # Nothing but the ticket page itself may be missing (it is not part of these pages).
    assert all("404" in e for e in pagina.errores_consola), pagina.errores_consola


def test_an_agent_assigns_and_moves_tickets_in_bulk_and_reuses_a_saved_filter(
    pagina, entrar, oficina, auditar, captura
):
    ana, luis = oficina["ana"], oficina["luis"]
    servidor, impresora, _vpn, clave, _switch = oficina["tickets"]
    entrar(pagina, ana)
    pagina.goto("/tickets/?orden=creado")

    for t in (servidor, impresora):
        pagina.get_by_label(f"Marcar el ticket #{t.numero}").check()
    pagina.get_by_label("Asignar a").select_option(label="Luis Vega")
    pagina.get_by_role("button", name="Asignar", exact=True).click()
    pagina.locator(".mensajes").get_by_text("2 tickets cambiados.").wait_for()
    for t in (servidor, impresora):
        t.refresh_from_db()
        assert t.asignado == luis
        assert t.detalles.filter(tipo="evento", autor=ana, texto__contains="Luis").exists()

    pagina.get_by_label(f"Marcar el ticket #{clave.numero}").check()
    pagina.get_by_label(f"Marcar el ticket #{servidor.numero}").check()
    pagina.get_by_label("Nuevo estado").select_option("en_espera")
    pagina.get_by_role("button", name="Cambiar estado").click()
    pagina.locator(".mensajes").get_by_text("2 tickets cambiados.").wait_for()
    for t in (clave, servidor):
        t.refresh_from_db()
        assert t.estado == "en_espera"
        assert t.detalles.filter(tipo="evento", autor=ana, texto__contains="→").exists()
    auditar(pagina, contexto="(queue after a bulk action)")

    # Save the current filters, reuse them from another page, delete them.
    pagina.get_by_label("Estado").first.wait_for()
    pagina.locator("input[name=estado][value=en_espera]").check()
    pagina.wait_for_url(re.compile(r"estado=en_espera"))
    _filas(pagina).filter(has_text="Impresora").wait_for(state="detached")
    pagina.get_by_label("Nombre").fill("En espera")
    pagina.get_by_role("button", name="Guardar estos filtros").click()
    pagina.locator(".mensajes").get_by_text("En espera").wait_for()
    assert FiltroGuardado.objects.get(usuario=ana).consulta == "estado=en_espera"

    pagina.goto("/")
    pagina.goto("/tickets/")
    assert _filas(pagina).count() == 4
    pagina.locator(".guardados").get_by_role("link", name="En espera").click()
    pagina.wait_for_url(re.compile(r"estado=en_espera"))
    assert _filas(pagina).count() == 2
    captura(pagina, "portal-cola-filtro-guardado")

    pagina.once("dialog", lambda d: d.accept())
    pagina.locator(".guardados").get_by_role("button", name=re.compile("Eliminar")).click()
    pagina.locator(".mensajes").get_by_text("Filtro guardado borrado.").wait_for()
    assert not FiltroGuardado.objects.exists()


def test_an_agent_takes_a_phone_call_as_a_new_ticket(pagina, entrar, oficina, auditar, captura):
    entrar(pagina, oficina["ana"])
    pagina.goto("/")
    pagina.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="Nuevo ticket"
    ).click()
    pagina.wait_for_url("**/tickets/nuevo")
    pagina.get_by_role("button", name="Crear ticket").click()
    pagina.locator(".error").first.wait_for()
    auditar(pagina, contexto="(new ticket, with errors)")
    captura(pagina, "portal-ticket-nuevo")

    pagina.get_by_label("Nombre del solicitante").fill("Rosa Quirós")
    pagina.get_by_label("Correo del solicitante").fill("rosa@example.com")
    pagina.get_by_label("Asunto").fill("Llamada: el sistema de planillas no abre")
    pagina.get_by_label("Lo que dice el solicitante").fill("Desde esta mañana no abre.")
    pagina.get_by_label("Prioridad").select_option("alta")
    pagina.get_by_role("button", name="Crear ticket").click()
    creado = None
    for _ in range(50):
        creado = Ticket.objects.filter(asunto__startswith="Llamada:").first()
        if creado:
            break
        pagina.wait_for_timeout(100)
    assert creado is not None
    pagina.wait_for_url(f"**/tickets/{creado.numero}/")
    assert creado.canal == "portal" and creado.prioridad == "alta"
    assert creado.departamento == oficina["soporte"]


def test_the_queue_works_at_a_phone_width(pagina, entrar, oficina, auditar, captura):
    pagina.set_viewport_size({"width": 360, "height": 740})
    entrar(pagina, oficina["ana"])
    pagina.goto("/tickets/")
    auditar(pagina, contexto="(queue, 360 px)")
    captura(pagina, "portal-cola-360")
    assert pagina.evaluate("document.documentElement.scrollWidth") <= 360
    pagina.goto("/")
    auditar(pagina, contexto="(dashboard, 360 px)")
    captura(pagina, "portal-tablero-360")
    assert pagina.evaluate("document.documentElement.scrollWidth") <= 360
