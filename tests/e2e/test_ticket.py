"""A day's work on one ticket in a real browser: a customer's mail arrives through Dovecot, the
agent opens the ticket, answers with a file (the mail reaches a real SMTP server through the
outbox and a real Celery worker, threaded to the customer's), the customer's answer comes back
through Dovecot onto the same page, an internal note stays inside, the ticket is handed over and
solved. The page is audited with axe and photographed, also at a phone's width."""

import email.policy
from email.message import EmailMessage
from email.utils import formatdate

import pytest

from incidencias.imap import sondear_buzones
from incidencias.models import (
    Calendario,
    CuentaCorreo,
    DetalleTicket,
    Notificacion,
    PoliticaSLA,
    Ticket,
)
from sso.models import Usuario

# Shared fixtures (a Dovecot mailbox, an SMTP server, a Celery worker), used through `request`.
from tests.incidencias.conftest import buzon, dovecot  # noqa: F401
from tests.notificaciones.conftest import smtp  # noqa: F401
from tests.notificaciones.test_worker import esperar, trabajador  # noqa: F401

pytestmark = pytest.mark.services


def _correo(asunto, cuerpo, *, message_id, responde_a=None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carla Cliente <carla@example.org>"
    msg["To"] = "soporte@example.com"
    msg["Subject"] = asunto
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id
    if responde_a:
        msg["In-Reply-To"] = responde_a
        msg["References"] = responde_a
    msg.set_content(cuerpo)
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.fixture
def equipo(transactional_db):
    from sso.models import Departamento

    soporte = Departamento.objects.create(nombre="Soporte")
    ana = Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password="x",
        nombre="Ana Mora",
        departamento=soporte,
        acceso_ticket=True,
    )
    bruno = Usuario.objects.create_user(
        username="bruno",
        email="bruno@example.com",
        password="x",
        nombre="Bruno Díaz",
        departamento=soporte,
        acceso_ticket=True,
    )
    calendario = Calendario.objects.create(nombre="Siempre")
    for prioridad in ("normal", "alta"):
        PoliticaSLA.objects.create(
            departamento=soporte,
            prioridad=prioridad,
            primera_respuesta_min=120,
            resolucion_min=24 * 60,
            calendario=calendario,
        )
    return soporte, ana, bruno


def test_an_agent_answers_a_customer_by_mail_and_works_the_ticket(
    pagina, entrar, auditar, captura, equipo, request, settings, tmp_path
):
    mailbox = request.getfixturevalue("buzon")
    servidor_smtp = request.getfixturevalue("smtp")
    worker = request.getfixturevalue("trabajador")
    settings.MEDIA_ROOT = tmp_path / "media"
    soporte, ana, bruno = equipo
    cuenta = CuentaCorreo.objects.create(
        host=mailbox.servidor.host,
        port=mailbox.servidor.port,
        seguridad=CuentaCorreo.Seguridad.NINGUNA,
        user=mailbox.user,
        password=mailbox.servidor.password,
        mail_boxes=["INBOX"],
        departamento=soporte,
    )
    primero = "<primero-carla@example.org>"
    mailbox.append(_correo("Sin internet", "No tengo internet desde ayer.", message_id=primero))

    with worker():
        sondear_buzones(cuenta_id=cuenta.pk)
        ticket = Ticket.objects.get()
        numero = ticket.numero

        # The agent opens the ticket and answers with a file.
        entrar(pagina, ana)
        pagina.goto(f"/tickets/{numero}/")
        pagina.get_by_role("heading", name=f"#{numero} Sin internet").wait_for()
        sla = pagina.locator("#sla")
        assert "restantes" in sla.inner_text()  # the first response is due in two hours
        assert pagina.get_by_text("No tengo internet desde ayer.").is_visible()
        pagina.keyboard.press("r")  # the reply's shortcut
        assert pagina.evaluate("document.activeElement.id") == "respuesta_texto"
        pagina.keyboard.type("Reinicie el router, por favor.")
        pagina.get_by_label("Adjuntos").set_input_files(
            {"name": "pasos.txt", "mimeType": "text/plain", "buffer": b"1. Apagar\n2. Encender\n"}
        )
        pagina.get_by_label("Y pasar el estado a").select_option("en_espera")
        pagina.get_by_role("button", name="Enviar respuesta").click()
        pagina.get_by_text("Respuesta enviada a carla@example.org.").wait_for()
        assert "Cumplido a tiempo" in sla.inner_text()

        respuesta = DetalleTicket.objects.get(ticket=ticket, tipo="respuesta")
        esperar(lambda: any("Reinicie" in str(m) for m in servidor_smtp.para("carla@example.org")))
        (correo,) = [m for m in servidor_smtp.para("carla@example.org") if "Reinicie" in str(m)]
        assert f"[Ticket #{numero}]" in correo["Subject"]
        assert correo["Message-ID"].strip("<>") == respuesta.message_id.strip("<>")
        assert correo["In-Reply-To"] == primero
        assert primero in correo["References"]
        assert [a.get_filename() for a in correo.iter_attachments()] == ["pasos.txt"]

        # The customer answers; the poller brings it to the same ticket.
        mailbox.append(
            _correo(
                f"Re: [Ticket #{numero}] Sin internet",
                "Ya funciona, gracias.",
                message_id="<segundo-carla@example.org>",
                responde_a=f"<{respuesta.message_id.strip('<>')}>",
            )
        )
        sondear_buzones(cuenta_id=cuenta.pk)
        assert Ticket.objects.count() == 1
        pagina.reload()
        pagina.get_by_text("Ya funciona, gracias.").wait_for()

        # An internal note: on the page, in no mail.
        enviados = len(servidor_smtp.mensajes)
        pagina.get_by_label("Nota", exact=True).fill("Era la fibra del edificio.")
        pagina.get_by_role("button", name="Añadir nota").click()
        pagina.get_by_text("Nota añadida.").wait_for()
        assert pagina.locator(".entrada-nota", has_text="Era la fibra del edificio.").is_visible()
        nota = DetalleTicket.objects.get(ticket=ticket, tipo="nota")
        assert not Notificacion.objects.filter(detalle=nota).exists()

        # Handed over to Bruno, then solved.
        pagina.get_by_label("Asignado a").select_option(label="Bruno Díaz")
        pagina.get_by_role("button", name="Asignar", exact=True).click()
        pagina.get_by_text("Asignado a Bruno Díaz.").wait_for()
        pagina.get_by_label("Estado", exact=True).select_option("resuelto")
        pagina.get_by_role("button", name="Cambiar estado").click()
        pagina.get_by_text("Estado: resuelto.").wait_for()
    ticket.refresh_from_db()
    assert (ticket.asignado, ticket.estado) == (bruno, "resuelto")
    assert not any("fibra del edificio" in str(m) for _, m, _ in servidor_smtp.mensajes[enviados:])

    auditar(pagina, contexto="(ticket page)")
    captura(pagina, "ticket")
    pagina.set_viewport_size({"width": 360, "height": 740})
    auditar(pagina, contexto="(ticket page, 360 px)")
    captura(pagina, "ticket-360")
    assert pagina.evaluate("document.documentElement.scrollWidth") <= 360
    assert pagina.errores_consola == []
