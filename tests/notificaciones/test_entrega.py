"""Delivery mechanics: claiming, backoff, the sweeper, admin, once-only under concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias.models import DetalleTicket, Notificacion, Ticket
from incidencias.notificaciones import (
    ErrorPasajero,
    ErrorPermanente,
    notificacion_entregar,
    notificaciones_barrer,
    notificar,
)
from incidencias.services import ticket_asignar
from incidencias.tasks import entregar_notificacion_task

Evento = Notificacion.Evento


@pytest.fixture
def fila(db, synology, ticket):
    (n,) = notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)
    return n


def test_a_task_run_twice_delivers_once(fila, synology):
    assert entregar_notificacion_task.apply(args=(fila.pk,)).get() == "enviada"
    assert entregar_notificacion_task.apply(args=(fila.pk,)).get() == "omitida"
    assert synology.enviadas == [fila.pk]


def test_a_row_being_sent_is_not_claimed_again(fila, synology):
    Notificacion.objects.filter(pk=fila.pk).update(
        estado="enviando", proximo_intento=timezone.now() + timedelta(minutes=5)
    )
    assert notificacion_entregar(pk=fila.pk) == "omitida"
    assert synology.enviadas == []


def test_it_waits_longer_after_each_failure_then_fails(fila, synology, settings):
    settings.NOTIFICACIONES_BACKOFF_SEGUNDOS = 30
    settings.NOTIFICACIONES_MAX_INTENTOS = 3
    synology.fallos = [ErrorPasajero("busy")] * 3
    esperas = []
    for _ in range(2):
        antes = timezone.now()
        assert notificacion_entregar(pk=fila.pk) == "pendiente"
        fila.refresh_from_db()
        esperas.append(round((fila.proximo_intento - antes).total_seconds() / 30))
        assert notificacion_entregar(pk=fila.pk) == "omitida"  # not due yet
        Notificacion.objects.filter(pk=fila.pk).update(proximo_intento=timezone.now())
    assert esperas == [1, 2]
    assert notificacion_entregar(pk=fila.pk) == "fallida"
    fila.refresh_from_db()
    assert (fila.estado, fila.intentos, fila.proximo_intento) == ("fallida", 3, None)


def test_a_permanent_error_fails_at_once(fila, synology):
    synology.fallos = [ErrorPermanente("bad token")]
    assert notificacion_entregar(pk=fila.pk) == "fallida"
    fila.refresh_from_db()
    assert (fila.intentos, fila.ultimo_error) == (1, "ErrorPermanente: bad token")


def test_the_sweeper_requeues_lost_rows_and_expired_leases(fila, synology, settings):
    settings.NOTIFICACIONES_GRACIA_SEGUNDOS = 60
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from incidencias.celery import app

    app.conf.task_always_eager = True
    try:
        assert notificaciones_barrer() == 0  # just written: its task is on its way
        hace_rato = timezone.now() - timedelta(minutes=2)
        Notificacion.objects.filter(pk=fila.pk).update(proximo_intento=hace_rato)
        assert notificaciones_barrer() == 1
        assert synology.enviadas == [fila.pk]
        # A worker killed while sending: its lease runs out and the row goes back.
        Notificacion.objects.filter(pk=fila.pk).update(
            estado="enviando", proximo_intento=timezone.now() - timedelta(seconds=1)
        )
        settings.NOTIFICACIONES_GRACIA_SEGUNDOS = 0
        assert notificaciones_barrer() == 1
        assert synology.enviadas == [fila.pk, fila.pk]
    finally:
        app.conf.task_always_eager = False


def test_the_admin_list_costs_the_same_queries_for_more_rows(
    admin_client, synology, ticket, settings
):
    settings.SESSION_IDLE_MINUTES = 0  # no session write (the activity stamp) in the counts

    def consultas():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get("/admin/incidencias/notificacion/").status_code == 200
        return len(ctx)

    notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)
    consultas()  # the session's first request records its last activity
    pocas = consultas()
    for _ in range(5):
        notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)
        notificar(evento=Evento.ASIGNACION, ticket=ticket)
    assert consultas() == pocas
    respuesta = admin_client.get("/admin/incidencias/notificacion/?estado=pendiente&canal=synology")
    assert respuesta.status_code == 200


def test_assigning_a_ticket_tells_the_agent_but_not_who_did_it(synology, ticket, asignado, jefa):
    ticket_asignar(ticket=ticket, agente=jefa, por=asignado)
    ticket.refresh_from_db()
    assert ticket.asignado == jefa
    assert sorted(n.destino for n in Notificacion.objects.filter(evento=Evento.ASIGNACION)) == [
        "jefa (DM)",
        "jefa@example.com",
    ]
    assert DetalleTicket.objects.get(ticket=ticket).tipo == "evento"
    ticket_asignar(ticket=ticket, agente=asignado, por=asignado)  # took it themselves
    assert Notificacion.objects.filter(evento=Evento.ASIGNACION).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_once_only_event_is_recorded_once_under_concurrency(
    postgres, synology, soporte, asignado
):
    ticket = Ticket.objects.create(numero=7, asunto="x", departamento=soporte, asignado=asignado)
    clave = f"sla_incumplido:{ticket.pk}:resolucion"
    escrito = threading.Event()
    resultados = {}

    def primero():
        try:
            with transaction.atomic():
                resultados["a"] = notificar(evento="sla_incumplido", ticket=ticket, unico=clave)
                escrito.set()
                # Commit only once the other transaction waits on the unique index.
                for _ in range(600):
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh, mid-transaction
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        )
                        if cursor.fetchone()[0]:
                            break
                    threading.Event().wait(0.05)
        finally:
            connections.close_all()

    def segundo():
        try:
            escrito.wait(30)
            with transaction.atomic():
                resultados["b"] = notificar(evento="sla_incumplido", ticket=ticket, unico=clave)
        except Exception as exc:
            resultados["b"] = exc
        finally:
            connections.close_all()

    hilos = [threading.Thread(target=primero), threading.Thread(target=segundo)]
    for hilo in hilos:
        hilo.start()
    for hilo in hilos:
        hilo.join()
    assert resultados["b"] == []
    assert [n.destino for n in resultados["a"]] == ["ana@example.com", "ana (DM)"]
    assert Notificacion.objects.filter(ticket=ticket).count() == 2
