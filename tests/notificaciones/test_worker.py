"""Delivery by a real Celery worker on Redis (`celery.contrib.testing.worker`)."""

import contextlib
import logging
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from incidencias.celery import app
from incidencias.ingest import ingest_raw
from incidencias.models import Notificacion, Ticket
from incidencias.notificaciones import ErrorPasajero, encolar, notificar
from incidencias.tasks import barrer_notificaciones_task, ping

from .conftest import correo_entrante, free_port

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Evento = Notificacion.Evento


def esperar(condicion, limite=60):
    """Wait for the worker to get there (a deadline, not a measurement)."""
    fin = time.monotonic() + limite
    while not condicion():
        if time.monotonic() > fin:
            raise AssertionError("the worker did not get there in time")
        time.sleep(0.05)


def estados():
    return sorted(Notificacion.objects.values_list("estado", flat=True))


@pytest.fixture
def trabajador(redis_url):
    """Starts a worker on demand (`with trabajador():`), after dropping stale tasks."""

    @contextlib.contextmanager
    def arrancar():
        app.control.purge()
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield
            ping.delay().get(timeout=60)  # everything enqueued before has been handled

    return arrancar


def _reiniciar_productor():
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_caido():
    """Points the broker at a closed port until the fixture (or `restaurar()`) ends."""
    anterior = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    _reiniciar_productor()

    def restaurar():
        app.conf.broker_url = anterior
        _reiniciar_productor()

    yield restaurar
    restaurar()


def test_a_mail_becomes_a_channel_message_a_dm_and_an_acknowledgement(
    trabajador, smtp, synology, regla, asignado
):
    with trabajador():
        resultado = ingest_raw(correo_entrante())
        esperar(lambda: estados() == ["enviada"] * 4)
    assert resultado.notificacion_synology == "En cola: canal soporte, ana (DM)"
    assert resultado.notificacion_correo == "En cola: cliente@example.org, ana@example.com"
    numero = resultado.ticket.numero
    assert [m["Subject"] for m in smtp.para("cliente@example.org")] == [
        f"Hemos recibido su mensaje: Sin servicio [Ticket #{numero}]"
    ]
    assert [m["Subject"] for m in smtp.para("ana@example.com")] == [
        f"Asignado a usted: Sin servicio [Ticket #{numero}]"
    ]
    enviadas = Notificacion.objects.filter(pk__in=synology.enviadas)
    assert sorted(n.destino for n in enviadas) == ["ana (DM)", "canal soporte"]


def test_a_task_run_twice_sends_once(trabajador, smtp, ticket):
    with trabajador():
        with transaction.atomic():
            (fila,) = notificar(evento=Evento.ASIGNACION, ticket=ticket)
        encolar([fila.pk, fila.pk, fila.pk])
    fila.refresh_from_db()
    assert (fila.estado, fila.intentos) == ("enviada", 1)
    assert len(smtp.mensajes) == 1


def test_the_ticket_is_saved_with_redis_down_and_the_sweeper_delivers_later(
    trabajador, broker_caido, smtp, regla, settings, caplog
):
    with caplog.at_level(logging.WARNING, logger="incidencias.notificaciones"):
        resultado = ingest_raw(correo_entrante())
    assert Ticket.objects.filter(pk=resultado.ticket.pk).exists()
    assert estados() == ["pendiente"]  # the acknowledgement, waiting
    assert "the sweeper will" in caplog.text
    broker_caido()  # Redis is back
    settings.NOTIFICACIONES_GRACIA_SEGUNDOS = 0
    with trabajador():
        assert barrer_notificaciones_task.delay().get(timeout=60) == 1
        esperar(lambda: estados() == ["enviada"])
    assert len(smtp.para("cliente@example.org")) == 1


def test_it_backs_off_then_fails_then_is_retried_from_admin(
    trabajador, synology, ticket, settings, admin_client
):
    settings.NOTIFICACIONES_BACKOFF_SEGUNDOS = 0
    settings.NOTIFICACIONES_MAX_INTENTOS = 3
    synology.fallos = [ErrorPasajero("Synology busy")] * 3
    with trabajador():
        with transaction.atomic():
            (fila,) = notificar(evento=Evento.TICKET_NUEVO, ticket=ticket)
        esperar(lambda: estados() == ["fallida"])
        fila.refresh_from_db()
        assert (fila.intentos, fila.ultimo_error) == (3, "ErrorPasajero: Synology busy")
        assert synology.enviadas == []

        respuesta = admin_client.post(
            "/admin/incidencias/notificacion/",
            {"action": "reintentar", "_selected_action": [fila.pk]},
        )
        assert respuesta.status_code == 302
        esperar(lambda: estados() == ["enviada"])
    assert synology.enviadas == [fila.pk]
    fila.refresh_from_db()
    assert (fila.intentos, fila.resultado) == (1, "Enviada a canal soporte")
