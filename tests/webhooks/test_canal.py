"""The Synology notification channel: message text, department channels, people through the
bot (resolving their id through `user_list`), and the channel tokens at rest."""

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import translation

from incidencias.models import Notificacion, Ticket
from incidencias.notificaciones import notificar
from sso.models import Usuario
from webhooks.canal import (
    NotificadorSynology,
    enlace_ticket,
    synology_enviar_canal,
    synology_enviar_usuario,
    synology_mensaje,
)
from webhooks.models import CanalSynology
from webhooks.synology import ErrorPasajero, ErrorPermanente

from .conftest import CANAL_TOKEN, error, ok_chatbot

pytestmark = pytest.mark.django_db


@pytest.fixture
def canal(soporte):
    return CanalSynology.objects.create(departamento=soporte, nombre="soporte", token=CANAL_TOKEN)


@pytest.fixture
def ticket(soporte, agente):
    return Ticket.objects.create(
        numero=132, asunto="No sirve el correo <x|y>", departamento=soporte, asignado=agente
    )


def notificacion(ticket, evento="ticket_nuevo", *, departamento=None, usuario=None, datos=None):
    """An outbox row as the outbox hands it to the channel."""
    return Notificacion(
        evento=evento,
        canal="synology",
        ticket=ticket,
        departamento=departamento,
        usuario=usuario,
        datos=datos or {},
    )


def test_it_renders_number_subject_department_and_link(ticket):
    texto = synology_mensaje(evento="ticket_nuevo", ticket=ticket, enlace="https://p.example/t/1")

    assert texto.splitlines() == [
        "Nuevo ticket #132",
        "Asunto: No sirve el correo ‹x|y›",
        "Departamento: Soporte",
        "<https://p.example/t/1|Abrir el ticket>",
    ]


@pytest.mark.parametrize(
    ("evento", "datos", "es", "en"),
    [
        ("respuesta_cliente", {}, "El cliente respondió el ticket #132", "The customer replied"),
        ("asignacion", {}, "Ticket #132 asignado a agente", "Ticket #132 assigned to agente"),
        (
            "sla_aviso",
            {"objetivo": "resolucion", "vence": "2025-03-04T15:30:00+00:00"},
            "Aviso de SLA en el ticket #132: resolución vence el 04/03/2025 09:30",
            "SLA warning on ticket #132: resolution due 04/03/2025 09:30",
        ),
        (
            "sla_incumplido",
            {"objetivo": "primera_respuesta", "vence": "2025-03-04T15:30:00+00:00"},
            "SLA incumplido en el ticket #132: primera respuesta vencía el 04/03/2025 09:30",
            "SLA breached on ticket #132: first response was due 04/03/2025 09:30",
        ),
        ("respuesta_enviada", {}, "Respuesta enviada en el ticket #132", "Reply sent on ticket"),
    ],
)
def test_it_renders_each_event_in_spanish_and_english(ticket, evento, datos, es, en):
    for idioma, esperado in (("es", es), ("en", en)):
        with translation.override(idioma):
            texto = synology_mensaje(evento=evento, ticket=ticket, enlace="u", datos=datos)
        assert texto.splitlines()[0].startswith(esperado)


def test_it_posts_a_department_notification_to_its_channel(synology, ticket, canal, soporte):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})

    resultado = NotificadorSynology().enviar(notificacion(ticket, departamento=soporte))

    assert resultado == "Enviada a canal soporte"
    (payload,) = synology.payloads()
    assert payload["text"].startswith("Nuevo ticket #132\n")
    assert f"<{enlace_ticket(ticket)}|Abrir el ticket>" in payload["text"]
    assert enlace_ticket(ticket).endswith(f"/tickets/{ticket.numero}/")


def test_it_fails_permanently_for_a_department_without_an_active_channel(ticket, soporte, canal):
    canal.activo = False
    canal.save()

    with pytest.raises(ErrorPermanente):
        NotificadorSynology().enviar(notificacion(ticket, departamento=soporte))


def test_the_outbox_queues_a_department_row_only_when_its_channel_is_active(
    synology, ticket, soporte, canal
):
    def departamento_filas():
        filas = notificar(evento="ticket_nuevo", ticket=ticket)
        return [n for n in filas if n.canal == "synology" and n.departamento_id == soporte.pk]

    assert len(departamento_filas()) == 1
    with override_settings(SYNOLOGY_URL=""):
        assert departamento_filas() == []  # Synology not configured at all
    canal.activo = False
    canal.save()  # the cached list of departments with a channel is forgotten
    assert departamento_filas() == []


def test_it_passes_synologys_failures_on_to_the_outbox(synology, ticket, canal, soporte):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(error(404))
    with pytest.raises(ErrorPermanente):
        NotificadorSynology().enviar(notificacion(ticket, departamento=soporte))

    synology.espera("incoming", token=CANAL_TOKEN).respond_with_data("", status=502)
    with pytest.raises(ErrorPasajero):
        NotificadorSynology().enviar(notificacion(ticket, departamento=soporte))


def test_it_sends_a_person_a_direct_message_through_the_bot(synology, ticket, agente):
    agente.id_synology = 120
    agente.save()
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))

    resultado = NotificadorSynology().enviar(notificacion(ticket, "asignacion", usuario=agente))

    assert resultado == "Enviada a agente por Synology"
    (payload,) = synology.payloads()
    assert payload["user_ids"] == [120]
    assert payload["text"].startswith("Ticket #132 asignado a agente\n")


def test_it_resolves_an_id_the_chatbot_does_not_know_through_user_list_and_stores_it(
    synology, agente
):
    agente.id_synology = 120  # from an outgoing webhook: the chatbot knows this person as 7
    agente.save()
    synology.espera("chatbot").respond_with_json(
        {"data": {"fail": {"120": "user not found"}, "succ": None}, "success": True}
    )
    synology.espera("user_list").respond_with_json(
        {"success": True, "data": {"users": [{"user_id": 7, "username": "Agente"}]}}
    )
    synology.espera("chatbot").respond_with_json(ok_chatbot(7))

    synology_enviar_usuario(usuario=agente, texto="hola")

    assert [p["user_ids"] for p in synology.payloads()] == [[120], [7]]
    agente.refresh_from_db()
    assert agente.id_synology == 7


def test_it_finds_a_person_without_an_id_through_user_list(synology, agente):
    synology.espera("user_list").respond_with_json(
        {"success": True, "data": {"users": [{"user_id": 9, "username": "agente"}]}}
    )
    synology.espera("chatbot").respond_with_json(ok_chatbot(9))

    synology_enviar_usuario(usuario=agente, texto="hola")

    agente.refresh_from_db()
    assert agente.id_synology == 9


def test_it_moves_a_synology_id_from_its_former_holder(synology, agente, soporte):
    otro = Usuario.objects.create_user(username="otro", password="x", id_synology=9)
    synology.espera("user_list").respond_with_json(
        {"success": True, "data": {"users": [{"user_id": 9, "username": "agente"}]}}
    )
    synology.espera("chatbot").respond_with_json(ok_chatbot(9))

    synology_enviar_usuario(usuario=agente, texto="hola")

    otro.refresh_from_db()
    agente.refresh_from_db()
    assert (otro.id_synology, agente.id_synology) == (None, 9)


def test_it_fails_permanently_for_a_person_synology_does_not_know(synology, agente):
    agente.id_synology = 120
    agente.save()
    synology.espera("chatbot").respond_with_json(
        {"data": {"fail": {"120": "user not found"}, "succ": None}, "success": True}
    )
    synology.espera("user_list").respond_with_json({"success": True, "data": {"users": []}})

    with pytest.raises(ErrorPermanente):
        synology_enviar_usuario(usuario=agente, texto="hola")
    agente.refresh_from_db()
    assert agente.id_synology == 120


def test_it_cuts_long_messages_to_what_synology_accepts(synology, canal):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})

    synology_enviar_canal(canal=canal, texto="x" * 5000)

    assert len(synology.payloads()[0]["text"]) == 2000


def test_it_keeps_channel_tokens_encrypted_at_rest(canal):
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM webhooks_canalsynology WHERE id = %s", [canal.pk])
        (guardado,) = cursor.fetchone()
    assert CANAL_TOKEN not in guardado and guardado.startswith("v1:")
    assert CanalSynology.objects.get(pk=canal.pk).token == CANAL_TOKEN


def test_it_allows_one_active_channel_per_department(canal, soporte):
    from django.core.exceptions import ValidationError

    otro = CanalSynology(departamento=soporte, nombre="otro", token="t")
    with pytest.raises(ValidationError):
        otro.full_clean()


def test_it_never_shows_a_channel_token_in_admin(admin_client, canal, synology):
    lista = admin_client.get("/admin/webhooks/canalsynology/")
    ficha = admin_client.get(f"/admin/webhooks/canalsynology/{canal.pk}/change/")

    assert lista.status_code == ficha.status_code == 200
    assert CANAL_TOKEN not in lista.content.decode() + ficha.content.decode()

    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})
    admin_client.post(
        "/admin/webhooks/canalsynology/",
        {"action": "enviar_prueba", "_selected_action": [canal.pk]},
    )
    assert len(synology.payloads()) == 1


def test_it_keeps_the_token_when_admin_saves_the_channel_without_one(admin_client, canal):
    respuesta = admin_client.post(
        f"/admin/webhooks/canalsynology/{canal.pk}/change/",
        {"departamento": canal.departamento_id, "nombre": "renombrado", "token": ""}
        | {"activo": "on"},
    )

    assert respuesta.status_code == 302
    canal.refresh_from_db()
    assert (canal.nombre, canal.token) == ("renombrado", CANAL_TOKEN)
