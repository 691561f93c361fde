"""Presence in a real browser: two agents on one ticket see each other, the first one through
the page's htmx poll, and the one who leaves is gone from the other's page at its next poll (the
page's beacon on `pagehide`), not when the mark expires; a reload is not leaving."""

import pytest
from playwright.sync_api import expect

from incidencias.models import Ticket
from sso.models import Departamento, Usuario


@pytest.fixture
def equipo(transactional_db):
    soporte = Departamento.objects.create(nombre="Soporte")
    ana, julia = (
        Usuario.objects.create_user(
            username=usuario,
            password="x",
            nombre=nombre,
            departamento=soporte,
            acceso_ticket=True,
        )
        for usuario, nombre in (("ana", "Ana Mora"), ("julia", "Julia Jefa"))
    )
    ticket = Ticket.objects.create(numero=4242, asunto="Sin internet", departamento=soporte)
    return ticket, ana, julia


def test_two_agents_see_each_other_and_one_who_leaves_is_gone(
    pagina, navegador, live_server, entrar, auditar, captura, equipo, settings
):
    settings.PRESENCIA_SEGUNDOS = 1  # the page polls every second
    ticket, ana, julia = equipo
    url = f"/tickets/{ticket.numero}/"
    entrar(pagina, ana)
    pagina.goto(url)
    presencia = pagina.locator("#presencia")
    expect(presencia).not_to_contain_text("viendo")

    contexto = navegador.new_context(base_url=live_server.url, locale="es-ES")
    try:
        otra = entrar(contexto.new_page(), julia)
        otra.goto(url)
        expect(otra.locator("#presencia")).to_contain_text(
            "Ana Mora también está viendo este ticket."
        )
        # Ana's page learns of Julia through its poll, without a reload.
        expect(presencia).to_contain_text("Julia Jefa también está viendo este ticket.")
        auditar(pagina, contexto="(ticket with another agent on it)")
        captura(pagina, "ticket-presencia")
        # A reload is not leaving: the old view's beacon arrives after the new view's mark.
        otra.reload()
        otra.locator("#presencia").wait_for()
        pagina.wait_for_timeout(2_500)  # two of Ana's polls
        expect(presencia).to_contain_text("Julia Jefa")
        otra.goto("/tickets/")  # Julia leaves: her page sends its beacon
        expect(presencia).not_to_contain_text("Julia Jefa", timeout=5_000)
    finally:
        contexto.close()
    assert pagina.errores_consola == []
