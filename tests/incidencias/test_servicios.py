"""Ticket work: reply by mail, internal notes, transfer, priority, merge, tickets made by hand,
canned responses and bulk changes, with their failures."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias.ingest import ingest_raw
from incidencias.models import (
    Adjunto,
    Calendario,
    ColaDepartamento,
    CorreoFallido,
    CuentaCorreo,
    DetalleTicket,
    Notificacion,
    PoliticaSLA,
    RespuestaPredefinida,
    Ticket,
)
from incidencias.notificaciones import notificacion_entregar
from incidencias.selectors import puede_trabajar, respuestas_predefinidas, ticket_para_usuario
from incidencias.services import (
    AdjuntoNuevo,
    DatosInvalidos,
    FusionInvalida,
    SinDestinatario,
    TicketFusionado,
    respuesta_predefinida_render,
    ticket_anotar,
    ticket_asignar,
    ticket_cambiar_estado,
    ticket_cambiar_prioridad,
    ticket_crear_manual,
    ticket_fusionar,
    ticket_responder,
    ticket_transferir,
    tickets_asignar_lote,
    tickets_cambiar_estado_lote,
)
from sso.models import Usuario

pytestmark = pytest.mark.django_db
Tipo = DetalleTicket.Tipo
Evento = Notificacion.Evento


@pytest.fixture
def ana(soporte):
    return Usuario.objects.create_user(
        username="ana", email="ana@example.com", password="x", nombre="Ana Agente",
        departamento=soporte, acceso_ticket=True,
    )  # fmt: skip


@pytest.fixture
def rita(redes):
    return Usuario.objects.create_user(
        username="rita", email="rita@example.com", password="x", nombre="Rita Redes",
        departamento=redes, acceso_ticket=True,
    )  # fmt: skip


@pytest.fixture
def calendario(db):
    return Calendario.objects.create(nombre="24/7", horario={})


@pytest.fixture
def politicas(soporte, redes, calendario):
    for departamento, prioridad, primera, resolucion in (
        (soporte, "normal", 60, 600),
        (soporte, "urgente", 10, 60),
        (redes, "normal", 120, 1200),
    ):
        PoliticaSLA.objects.create(
            departamento=departamento, prioridad=prioridad, primera_respuesta_min=primera,
            resolucion_min=resolucion, calendario=calendario,
        )  # fmt: skip


def correo(*, asunto="Sin servicio", message_id=None, de="Cliente <cliente@example.org>", extra=""):
    message_id = message_id or f"<{uuid.uuid4().hex}@example.org>"
    return (
        f"From: {de}\r\nTo: soporte@example.com\r\nSubject: {asunto}\r\n"
        f"Message-ID: {message_id}\r\nDate: Tue, 10 Mar 2026 10:00:00 -0600\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nNo tengo internet desde ayer.\r\n"
    ).encode()


@pytest.fixture
def buzon(soporte):
    return CuentaCorreo.objects.create(
        host="127.0.0.1", user="soporte@example.com", departamento=soporte
    )


@pytest.fixture
def ticket(buzon, ana, politicas):
    """A ticket opened by the customer's mail, assigned to Ana (the only agent)."""
    resultado = ingest_raw(correo(message_id="<primero@example.org>"), cuenta=buzon)
    assert resultado.creado
    return resultado.ticket


def entregar(pks):
    return [notificacion_entregar(pk=pk) for pk in pks]


# --- Replies --------------------------------------------------------------------------------


def test_it_mails_a_reply_with_the_tag_threading_headers_cc_and_attachment(smtp, ticket, ana):
    ingest_raw(
        correo(
            asunto=f"Re: Sin servicio {ticket.etiqueta}",
            message_id="<segundo@example.org>",
            extra="In-Reply-To: <primero@example.org>\r\nReferences: <primero@example.org>\r\n",
        ),
        cuenta=CuentaCorreo.objects.get(),
    )
    detalle = ticket_responder(
        ticket=ticket,
        autor=ana,
        texto="Reinicie el módem, por favor.",
        cc=["Jefe <Jefe@Example.org>"],
        adjuntos=[AdjuntoNuevo("guia.pdf", b"%PDF-1.4 guia", "application/pdf")],
    )
    assert detalle.tipo == Tipo.RESPUESTA and detalle.autor == ana
    assert detalle.in_reply_to == "segundo@example.org"
    assert detalle.references == "primero@example.org segundo@example.org"
    (adjunto,) = Adjunto.objects.filter(detalle=detalle)
    assert (adjunto.nombre, adjunto.tamano) == ("guia.pdf", len(b"%PDF-1.4 guia"))

    (fila,) = Notificacion.objects.filter(evento=Evento.RESPUESTA)
    assert (fila.correo, fila.message_id, fila.detalle) == (
        "cliente@example.org", detalle.message_id, detalle,
    )  # fmt: skip
    assert smtp.messages == []  # queued, not sent inline
    assert entregar([fila.pk]) == ["enviada"]

    ((destinatarios, mail),) = smtp.messages
    assert sorted(destinatarios) == ["cliente@example.org", "jefe@example.org"]
    assert mail["Subject"] == f"{ticket.etiqueta} Sin servicio"
    assert mail["From"] == "Soporte <soporte@example.com>"  # the department's mailbox
    assert mail["To"] == "cliente@example.org"
    assert mail["Cc"] == "jefe@example.org"
    assert mail["Message-ID"] == f"<{detalle.message_id}>"
    assert mail["In-Reply-To"] == "<segundo@example.org>"
    assert mail["References"] == "<primero@example.org> <segundo@example.org>"
    assert mail["X-Incidencias-Ticket"] == str(ticket.numero)
    assert mail["Auto-Submitted"] is None  # a person's mail
    assert "Reinicie el módem" in mail.get_body(("plain",)).get_content()
    (parte,) = list(mail.iter_attachments())
    assert parte.get_filename() == "guia.pdf"
    assert parte.get_content() == b"%PDF-1.4 guia"

    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.ABIERTO  # an agent is on it
    assert ticket.primera_respuesta_en is not None
    assert "jefe@example.org" in ticket.participantes


def test_a_long_threads_references_keep_its_first_and_latest_messages(ticket, ana, buzon):
    for i in range(25):
        ingest_raw(
            correo(
                message_id=f"<m{i}@example.org>", extra="In-Reply-To: <primero@example.org>\r\n"
            ),
            cuenta=buzon,
        )
    detalle = ticket_responder(ticket=ticket, autor=ana, texto="Hola")
    referencias = detalle.references.split()
    assert len(referencias) == 20
    assert referencias[0] == "primero@example.org"
    assert referencias[1:] == [f"m{i}@example.org" for i in range(6, 25)]
    assert detalle.in_reply_to == "m24@example.org"


def test_a_reply_copied_back_from_the_mailbox_opens_no_ticket(smtp, ticket, ana, buzon):
    detalle = ticket_responder(ticket=ticket, autor=ana, texto="Listo.")
    entregar(Notificacion.objects.filter(evento=Evento.RESPUESTA).values_list("pk", flat=True))
    ((_, mail),) = smtp.messages
    antes = Ticket.objects.count()

    copia = ingest_raw(mail.as_bytes(), cuenta=buzon)

    assert copia.ticket is None and copia.fallido.motivo == CorreoFallido.Motivo.BUCLE
    assert Ticket.objects.count() == antes
    # The customer's answer to it threads onto the ticket by our Message-ID.
    respuesta = ingest_raw(
        correo(asunto="Re: Sin servicio", extra=f"In-Reply-To: <{detalle.message_id}>\r\n"),
        cuenta=buzon,
    )
    assert respuesta.ticket.pk == ticket.pk and not respuesta.creado


def test_a_reply_can_leave_the_ticket_waiting_on_the_customer(ticket, ana):
    ticket_responder(ticket=ticket, autor=ana, texto="¿Sigue el problema?", estado="en_espera")
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.EN_ESPERA
    assert ticket.sla_pausado_en is not None and ticket.sla_proximo is None
    assert ticket.detalles.filter(tipo=Tipo.EVENTO, texto__contains="En espera").exists() or (
        ticket.detalles.filter(tipo=Tipo.EVENTO).exists()
    )


def test_a_reply_is_sent_from_the_default_address_without_a_department_mailbox(
    smtp, soporte, ana, politicas
):
    ticket = ticket_crear_manual(
        departamento=soporte, asunto="Llamada", texto="Llamó el cliente",
        solicitante_email="cliente@example.org", por=ana,
    )  # fmt: skip
    ticket_responder(ticket=ticket, autor=ana, texto="Hola")
    entregar(Notificacion.objects.filter(evento=Evento.RESPUESTA).values_list("pk", flat=True))
    ((_, mail),) = [m for m in smtp.messages if "cliente@example.org" in m[0]][-1:]
    assert mail["From"] == "soporte@example.com"
    assert mail["In-Reply-To"] is None  # nothing mailed before on this ticket


def test_it_refuses_a_reply_that_cannot_be_sent(ticket, ana):
    with pytest.raises(DatosInvalidos):
        ticket_responder(ticket=ticket, autor=ana, texto="   ")
    with pytest.raises(DatosInvalidos) as error:
        ticket_responder(ticket=ticket, autor=ana, texto="Hola", cc=["no es un correo"])
    assert "cc" in error.value.campos
    with pytest.raises(DatosInvalidos):
        ticket_responder(ticket=ticket, autor=ana, texto="Hola", estado="inventado")
    Ticket.objects.filter(pk=ticket.pk).update(solicitante_email="")
    with pytest.raises(SinDestinatario):
        ticket_responder(ticket=ticket, autor=ana, texto="Hola")
    assert not DetalleTicket.objects.filter(tipo=Tipo.RESPUESTA).exists()
    assert not Notificacion.objects.filter(evento=Evento.RESPUESTA).exists()


def test_an_internal_note_is_never_mailed(smtp, ticket, ana):
    filas = Notificacion.objects.count()
    nota = ticket_anotar(ticket=ticket, autor=ana, texto="El cliente es VIP")
    assert (nota.tipo, nota.autor, nota.texto) == (Tipo.NOTA, ana, "El cliente es VIP")
    assert Notificacion.objects.count() == filas
    ticket.refresh_from_db()
    assert ticket.primera_respuesta_en is None  # a note is no response
    with pytest.raises(DatosInvalidos):
        ticket_anotar(ticket=ticket, autor=ana, texto="")


# --- Department and priority ----------------------------------------------------------------


def test_a_transfer_takes_the_new_departments_agent_and_sla(ticket, ana, rita, redes):
    ticket_transferir(ticket=ticket, departamento=redes, por=ana)
    ticket.refresh_from_db()
    assert (ticket.departamento, ticket.asignado) == (redes, rita)
    assert ticket.vence_primera_respuesta == ticket.creado + timedelta(minutes=120)
    assert ticket.vence_resolucion == ticket.creado + timedelta(minutes=1200)
    evento = ticket.detalles.filter(tipo=Tipo.EVENTO).last()
    assert "Redes" in evento.texto and "Rita Redes" in evento.texto
    assert Notificacion.objects.filter(evento=Evento.ASIGNACION, usuario=rita).exists()


def test_a_transfer_to_a_department_without_agents_or_policy_leaves_it_queued(ticket, ana, db):
    from sso.models import Departamento

    vacio = Departamento.objects.create(nombre="Archivo")
    ColaDepartamento.objects.create(departamento=vacio)
    ticket_transferir(ticket=ticket, departamento=vacio, por=ana)
    ticket.refresh_from_db()
    assert ticket.asignado is None and ticket.vence_resolucion is None
    assert ticket.sla_proximo is None


def test_a_priority_change_sets_the_sla_of_that_priority(ticket, ana):
    ticket_cambiar_prioridad(ticket=ticket, prioridad="urgente", por=ana)
    ticket.refresh_from_db()
    assert ticket.prioridad == "urgente"
    assert ticket.vence_primera_respuesta == ticket.creado + timedelta(minutes=10)
    assert ticket.vence_resolucion == ticket.creado + timedelta(minutes=60)
    assert ticket.sla_proximo == ticket.aviso_primera_respuesta
    with pytest.raises(DatosInvalidos):
        ticket_cambiar_prioridad(ticket=ticket, prioridad="altisima", por=ana)


def test_a_raised_breach_is_pending_again_when_the_target_moves_later(ticket, ana):
    hace = timezone.now() - timedelta(minutes=30)
    Ticket.objects.filter(pk=ticket.pk).update(
        creado=timezone.now() - timedelta(minutes=55),  # normal: warned at 48', due at 60'
        prioridad="urgente",
        incumplido_primera_respuesta_en=hace,
        avisado_primera_respuesta_en=hace,
    )
    ticket_cambiar_prioridad(ticket=ticket, prioridad="normal", por=ana)
    ticket.refresh_from_db()
    assert ticket.incumplido_primera_respuesta_en is None
    assert ticket.avisado_primera_respuesta_en is not None  # its warning moment is past


def test_the_admin_changes_department_and_priority_through_the_services(
    client, ticket, rita, redes
):
    admin = Usuario.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin)
    url = f"/admin/incidencias/ticket/{ticket.pk}/change/"
    formulario = client.get(url).context["adminform"].form
    datos = {k: v for k, v in formulario.initial.items() if v is not None}
    datos.update(
        {
            "departamento": redes.pk,
            "prioridad": "urgente",
            "asignado": ticket.asignado_id,
            "participantes": "[]",
            "detalles-TOTAL_FORMS": "0",
            "detalles-INITIAL_FORMS": "0",
        }
    )
    datos = {k: v for k, v in datos.items() if not isinstance(v, list | dict)}
    datos["participantes"] = "[]"
    respuesta = client.post(url, datos)
    assert respuesta.status_code == 302, respuesta.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert (ticket.departamento, ticket.asignado, ticket.prioridad) == (redes, rita, "urgente")
    # No policy for Redes × urgente: the due dates went with the old department's.
    assert ticket.vence_resolucion is None
    textos = list(ticket.detalles.filter(tipo=Tipo.EVENTO).values_list("texto", flat=True))
    assert any("Redes" in t for t in textos) and any("urgente" in t.lower() for t in textos)


def test_the_admin_refuses_to_move_a_merged_ticket_with_a_message(client, ticket, buzon):
    otro = ingest_raw(correo(message_id="<otro-admin@example.org>"), cuenta=buzon).ticket
    admin = Usuario.objects.create_superuser("root", "root@example.com", "x")
    ticket_fusionar(origen=ticket, destino=otro, por=admin)
    client.force_login(admin)
    url = f"/admin/incidencias/ticket/{ticket.pk}/change/"
    formulario = client.get(url).context["adminform"].form
    datos = {k: v for k, v in formulario.initial.items() if v is not None}
    datos = {k: v for k, v in datos.items() if not isinstance(v, list | dict)}
    datos.update(
        {
            "estado": Ticket.Estado.ABIERTO,
            "participantes": "[]",
            "detalles-TOTAL_FORMS": "0",
            "detalles-INITIAL_FORMS": "0",
        }
    )
    respuesta = client.post(url, datos)
    assert respuesta.status_code == 200
    assert respuesta.context["adminform"].form.non_field_errors()
    ticket.refresh_from_db()
    assert ticket.estado == Ticket.Estado.CERRADO


# --- Merge ----------------------------------------------------------------------------------


def test_a_merge_moves_the_thread_and_later_mail_follows_it(ticket, ana, buzon):
    otro = ingest_raw(
        correo(message_id="<otro@example.org>", de="Beto <beto@example.net>"), cuenta=buzon
    ).ticket
    ticket_anotar(ticket=otro, autor=ana, texto="nota del otro")
    destino = ticket_fusionar(origen=otro, destino=ticket, por=ana)
    assert destino.pk == ticket.pk
    otro.refresh_from_db()
    assert otro.estado == Ticket.Estado.CERRADO
    assert otro.relacionado_id == ticket.pk and otro.fusionado_en is not None
    assert ticket.detalles.filter(message_id="otro@example.org").exists()
    assert ticket.detalles.filter(tipo=Tipo.NOTA, texto="nota del otro").exists()
    assert any(f"#{otro.numero}" in t for t in ticket.detalles.values_list("texto", flat=True))
    assert otro.detalles.filter(tipo=Tipo.EVENTO, texto__contains=f"#{ticket.numero}").exists()
    ticket.refresh_from_db()
    assert "beto@example.net" in ticket.participantes

    # A reply to the merged ticket's mail, or with its tag, lands on the ticket it joined.
    por_cabecera = ingest_raw(
        correo(de="Beto <beto@example.net>", extra="In-Reply-To: <otro@example.org>\r\n"),
        cuenta=buzon,
    )
    por_etiqueta = ingest_raw(
        correo(de="Beto <beto@example.net>", asunto=f"Re: {otro.etiqueta}"), cuenta=buzon
    )
    assert por_cabecera.ticket.pk == ticket.pk and not por_cabecera.creado
    assert por_etiqueta.ticket.pk == ticket.pk and not por_etiqueta.creado


def test_mail_follows_a_chain_of_merges(ticket, ana, buzon):
    b = ingest_raw(correo(message_id="<b@example.org>"), cuenta=buzon).ticket
    c = ingest_raw(correo(message_id="<c@example.org>"), cuenta=buzon).ticket
    ticket_fusionar(origen=ticket, destino=b, por=ana)
    ticket_fusionar(origen=b, destino=c, por=ana)
    # Our acknowledgement of the first ticket, answered: it threads through both merges.
    acuse = Notificacion.objects.filter(ticket=ticket, evento=Evento.ACUSE).first()
    resultado = ingest_raw(correo(extra=f"In-Reply-To: <{acuse.message_id}>\r\n"), cuenta=buzon)
    assert resultado.ticket.pk == c.pk


def test_it_refuses_merges_that_make_no_sense(ticket, ana, buzon):
    b = ingest_raw(correo(message_id="<b@example.org>"), cuenta=buzon).ticket
    c = ingest_raw(correo(message_id="<c@example.org>"), cuenta=buzon).ticket
    with pytest.raises(FusionInvalida):
        ticket_fusionar(origen=ticket, destino=ticket, por=ana)
    ticket_fusionar(origen=b, destino=c, por=ana)
    with pytest.raises(FusionInvalida) as error:
        ticket_fusionar(origen=ticket, destino=b, por=ana)
    assert f"#{c.numero}" in str(error.value)  # names where it ended
    with pytest.raises(TicketFusionado):
        ticket_fusionar(origen=b, destino=ticket, por=ana)
    with pytest.raises(FusionInvalida):
        ticket_fusionar(origen=c, destino=b, por=ana)  # into itself, through the chain
    with pytest.raises(TicketFusionado):
        ticket_responder(ticket=b, autor=ana, texto="hola")
    # Nor is a merged-away ticket assigned or moved, from whichever caller.
    asignado = b.asignado_id
    assert asignado is not None
    with pytest.raises(TicketFusionado):
        ticket_asignar(ticket=b, agente=None, por=ana)
    with pytest.raises(TicketFusionado):
        ticket_cambiar_estado(ticket=b, estado=Ticket.Estado.ABIERTO, por=ana)
    b.refresh_from_db()
    assert b.estado == Ticket.Estado.CERRADO and b.asignado_id == asignado
    ticket.refresh_from_db()
    assert ticket.fusionado_en is None


# --- Tickets made by hand -------------------------------------------------------------------


def test_a_ticket_made_by_hand_is_opened_like_mail(soporte, ana, politicas, smtp):
    previo = ticket_crear_manual(departamento=soporte, asunto="a", texto="b", por=ana)
    ticket = ticket_crear_manual(
        departamento=soporte, asunto="Llamada: sin internet", texto="Llamó a las 10.",
        solicitante_nombre="Carla", solicitante_email="Carla@Example.org", prioridad="urgente",
        por=ana,
    )  # fmt: skip
    assert ticket.numero > previo.numero
    assert (ticket.asignado, ticket.canal, ticket.prioridad) == (ana, "portal", "urgente")
    assert ticket.solicitante_email == "carla@example.org"
    assert ticket.vence_resolucion - ticket.vence_primera_respuesta == timedelta(minutes=50)
    primero = ticket.detalles.order_by("id").first()
    assert (primero.tipo, primero.texto, primero.autor) == (Tipo.ENTRANTE, "Llamó a las 10.", ana)
    eventos = set(Notificacion.objects.filter(ticket=ticket).values_list("evento", flat=True))
    assert Evento.ACUSE in eventos  # the requester learns the ticket's number


def test_it_refuses_a_ticket_by_hand_without_what_it_needs(soporte, ana):
    with pytest.raises(DatosInvalidos) as error:
        ticket_crear_manual(departamento=None, asunto="", texto="", por=ana, prioridad="x")
    assert set(error.value.campos) == {"departamento", "asunto", "texto", "prioridad"}
    with pytest.raises(DatosInvalidos):
        ticket_crear_manual(
            departamento=soporte, asunto="a", texto="b", solicitante_email="nope", por=ana
        )
    assert not Ticket.objects.exists()


# --- Canned responses -----------------------------------------------------------------------


def test_a_canned_response_fills_only_known_placeholders(ticket, ana, soporte, redes):
    respuesta = RespuestaPredefinida.objects.create(
        nombre="Saludo",
        departamento=soporte,
        texto=(
            "Hola {{ solicitante.nombre }}, ticket #{{ticket.numero}}. {{ agente.nombre }} "
            "({{ departamento.nombre }}). {{ settings.SECRET_KEY }} {% now 'Y' %} "
            "{{ ticket.numero|add:1 }}"
        ),
    )
    texto = respuesta_predefinida_render(respuesta=respuesta, ticket=ticket, agente=ana)
    assert texto == (
        f"Hola Cliente, ticket #{ticket.numero}. Ana Agente (Soporte). "
        "{{ settings.SECRET_KEY }} {% now 'Y' %} {{ ticket.numero|add:1 }}"
    )
    RespuestaPredefinida.objects.create(nombre="Global", texto="x")
    RespuestaPredefinida.objects.create(nombre="De redes", texto="x", departamento=redes)
    RespuestaPredefinida.objects.create(nombre="Vieja", texto="x", activa=False)
    nombres = [r.nombre for r in respuestas_predefinidas(ticket=ticket)]
    assert nombres == ["Global", "Saludo"]


# --- Bulk -----------------------------------------------------------------------------------


def _tickets(n, soporte, inicio=1000):
    return [
        Ticket.objects.create(numero=inicio + i, asunto=f"t{i}", departamento=soporte)
        for i in range(n)
    ]


def test_bulk_assignment_costs_the_same_queries_for_two_or_ten_tickets(soporte, ana, rita):
    (primero,) = _tickets(1, soporte, inicio=500)
    tickets_asignar_lote(tickets=[primero], agente=rita, por=ana)  # preferences cached
    pocos = _tickets(2, soporte)
    with CaptureQueriesContext(connection) as dos:
        tickets_asignar_lote(tickets=pocos, agente=ana, por=rita)
    muchos = [t for t in _tickets(10, soporte, inicio=2000)]
    with CaptureQueriesContext(connection) as diez:
        cambiados = tickets_asignar_lote(tickets=muchos, agente=ana, por=rita)
    assert len(cambiados) == 10
    assert len(diez) == len(dos)
    for t in muchos:
        assert t.detalles.filter(tipo=Tipo.EVENTO, texto__contains="Ana Agente").count() == 1
    assert Notificacion.objects.filter(evento=Evento.ASIGNACION, usuario=ana).count() == 12
    # Already theirs: nothing changes, nothing is noted again.
    assert tickets_asignar_lote(tickets=muchos, agente=ana, por=rita) == []


def test_bulk_state_change_keeps_each_clock_and_costs_constant_queries(soporte, ana, politicas):
    pocos = _tickets(2, soporte)
    tickets_cambiar_estado_lote(tickets=pocos, estado="abierto", por=ana)  # policies cached
    with CaptureQueriesContext(connection) as dos:
        tickets_cambiar_estado_lote(tickets=pocos, estado="en_espera", por=ana)
    muchos = _tickets(10, soporte, inicio=2000)
    tickets_cambiar_estado_lote(tickets=muchos, estado="abierto", por=ana)
    with CaptureQueriesContext(connection) as diez:
        cambiados = tickets_cambiar_estado_lote(tickets=muchos, estado="en_espera", por=ana)
    assert len(cambiados) == 10 and len(diez) == len(dos)
    for t in muchos:
        t.refresh_from_db()
        assert t.estado == "en_espera" and t.sla_pausado_en is not None
    with pytest.raises(DatosInvalidos):
        tickets_cambiar_estado_lote(tickets=muchos, estado="borrado", por=ana)


# --- Access ---------------------------------------------------------------------------------


def test_a_ticket_outside_what_one_sees_does_not_exist(ticket, ana, rita):
    assert ticket_para_usuario(usuario=ana, numero_o_pk=ticket.numero) == ticket
    assert ticket_para_usuario(usuario=ana, numero_o_pk=str(ticket.pk), por_pk=True) == ticket
    for valor in (ticket.numero, "abc", None, 10**30):
        with pytest.raises(Ticket.DoesNotExist):
            ticket_para_usuario(usuario=rita if valor == ticket.numero else ana, numero_o_pk=valor)


def test_who_may_work_a_ticket(ticket, ana, rita, soporte):
    jefa = Usuario.objects.create_user(
        "jefa", "jefa@example.com", "x", departamento=soporte, jefe=True
    )
    mirona = Usuario.objects.create_user("mirona", "m@example.com", "x", is_staff=True)
    root = Usuario.objects.create_superuser("root", "root@example.com", "x")
    inactiva = Usuario.objects.create_user(
        "ex", "ex@example.com", "x", departamento=soporte, acceso_ticket=True, is_active=False
    )
    assert puede_trabajar(ana, ticket) and puede_trabajar(jefa, ticket)
    assert puede_trabajar(root, ticket)
    assert not puede_trabajar(rita, ticket)  # another department
    assert not puede_trabajar(mirona, ticket)  # staff without the permission only read
    assert not puede_trabajar(inactiva, ticket)


def test_bulk_and_transfer_refuse_what_cannot_be(soporte, ana, rita, ticket):
    rita.is_active = False
    rita.save()
    with pytest.raises(DatosInvalidos):
        tickets_asignar_lote(tickets=[ticket], agente=rita, por=ana)
    with pytest.raises(DatosInvalidos):
        ticket_transferir(ticket=ticket, departamento=None, por=ana)
    ticket.refresh_from_db()
    assert (ticket.asignado, ticket.departamento) == (ana, soporte)
    # A merged-away ticket is left out of a batch.
    otro = ticket_crear_manual(departamento=soporte, asunto="a", texto="b", por=ana)
    ticket_fusionar(origen=otro, destino=ticket, por=ana)
    assert tickets_cambiar_estado_lote(tickets=[otro, ticket], estado="resuelto", por=ana) == [
        ticket
    ]
