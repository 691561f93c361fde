import pytest

from incidencias.models import Notificacion, PreferenciaNotificacion
from incidencias.notificaciones import enlace_ticket, notificar

Evento = Notificacion.Evento


def _destinos(filas):
    return sorted((n.canal, n.destino) for n in filas)


@pytest.mark.django_db
def test_it_writes_rows_by_the_default_routes(correo_de_prueba, ticket, jefa):
    nuevo = notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)
    assert _destinos(nuevo) == [("synology", "canal soporte")]
    asignacion = notificar(evento=Evento.ASIGNACION, ticket=ticket)
    assert _destinos(asignacion) == [("correo", "ana@example.com"), ("synology", "ana (DM)")]
    incumplido = notificar(evento=Evento.SLA_INCUMPLIDO, ticket=ticket)
    assert _destinos(incumplido) == [
        ("correo", "ana@example.com"),
        ("correo", "jefa@example.com"),
        ("synology", "ana (DM)"),
        ("synology", "jefa (DM)"),
    ]
    assert notificar(evento=Evento.RESPUESTA_ENVIADA, ticket=ticket) == []
    assert all(n.estado == "pendiente" and n.pk for n in [*nuevo, *asignacion, *incumplido])
    assert all(n.message_id.startswith("incidencias.") for n in incumplido if n.canal == "correo")


@pytest.mark.django_db
def test_it_records_a_once_only_event_once(synology, ticket):
    clave = f"sla_aviso:{ticket.pk}:resolucion"
    datos = {"objetivo": "resolucion", "vence": "2026-01-01T10:00:00-06:00"}
    primeras = notificar(evento=Evento.SLA_AVISO, ticket=ticket, datos=datos, unico=clave)
    assert _destinos(primeras) == [("synology", "ana (DM)")]
    assert notificar(evento=Evento.SLA_AVISO, ticket=ticket, datos=datos, unico=clave) == []
    assert Notificacion.objects.filter(evento=Evento.SLA_AVISO).count() == 1


@pytest.mark.django_db
def test_it_records_a_once_only_event_with_nobody_to_tell_as_discarded(synology, ticket):
    ticket.asignado = None
    ticket.save()
    clave = f"sla_aviso:{ticket.pk}:primera_respuesta"
    assert notificar(evento=Evento.SLA_AVISO, ticket=ticket, unico=clave) == []
    fila = Notificacion.objects.get(unico=clave)
    assert fila.estado == "descartada"
    assert notificar(evento=Evento.SLA_AVISO, ticket=ticket, unico=clave) == []
    assert Notificacion.objects.count() == 1


@pytest.mark.django_db
def test_it_honours_department_and_personal_preferences(
    correo_de_prueba, ticket, soporte, asignado
):
    PreferenciaNotificacion.objects.create(
        departamento=soporte,
        evento=Evento.TICKET_NUEVO,
        destinatario="departamento",
        canal="synology",
        activa=False,
    )
    PreferenciaNotificacion.objects.create(
        departamento=soporte, evento=Evento.TICKET_NUEVO, destinatario="asignado", canal="synology"
    )
    PreferenciaNotificacion.objects.create(
        usuario=asignado, evento=Evento.ASIGNACION, canal="correo", activa=False
    )
    assert _destinos(notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)) == [
        ("synology", "ana (DM)")
    ]
    assert _destinos(notificar(evento=Evento.ASIGNACION, ticket=ticket)) == [
        ("synology", "ana (DM)")
    ]


@pytest.mark.django_db
def test_it_tells_nobody_of_their_own_action(synology, ticket, asignado):
    assert notificar(evento=Evento.ASIGNACION, ticket=ticket, datos={"por": asignado.pk}) == []


@pytest.mark.django_db
def test_it_links_to_the_ticket_page_of_the_portal(ticket, settings):
    settings.SITE_URL = "https://soporte.example.com/"
    assert enlace_ticket(ticket) == "https://soporte.example.com/tickets/132/"
