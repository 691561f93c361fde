"""Reminders before a credential expires: through the outbox, by a real worker and SMTP."""

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from credenciales import services
from credenciales.avisos import credenciales_avisar_vencimientos, umbral
from credenciales.tasks import avisar_vencimientos_task
from incidencias.celery import app
from incidencias.models import Notificacion
from incidencias.tasks import ping
from sso.models import Usuario

from .conftest import SECRETO

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def esperar(condicion, limite=60):
    """Wait for the worker to get there (a deadline, not a measurement)."""
    fin = time.monotonic() + limite
    while not condicion():
        if time.monotonic() > fin:
            raise AssertionError("the worker did not get there in time")
        time.sleep(0.05)


@pytest.fixture
def trabajador(redis_url):
    @contextlib.contextmanager
    def arrancar():
        app.control.purge()
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield
            ping.delay().get(timeout=60)  # everything enqueued before has been handled

    return arrancar


@pytest.fixture
def personas(soporte, redes):
    def hacer(nombre, departamento, **extra):
        return Usuario.objects.create_user(
            username=nombre,
            email=f"{nombre}@example.com",
            password="x",
            departamento=departamento,
            **extra,
        )

    return {
        "jefa": hacer("jefa", soporte, jefe=True),
        "creador": hacer("creador", soporte),
        "companero": hacer("companero", soporte),
        "jefe_redes": hacer("jeferedes", redes, jefe=True),
        "jefa_inactiva": hacer("exjefa", soporte, jefe=True, is_active=False),
    }


def _crear(tipo, departamento, unidad, vence, por, cuenta="app@example.com"):
    return services.credencial_crear(
        tipo=tipo,
        departamento=departamento,
        unidad=unidad,
        usuario=cuenta,
        clave=SECRETO,
        vence=vence,
        por=por,
    )


def _correos(smtp):
    return sorted((tuple(rcpt), m["Subject"], m.get_content()) for rcpt, m in list(smtp.messages))


def test_it_picks_the_nearest_threshold_not_passed():
    dias = [1, 7, 30]
    assert [umbral(q, dias) for q in (0, 1, 2, 7, 8, 30, 31, -1)] == [
        1, 1, 7, 7, 30, 30, None, None,
    ]  # fmt: skip


def test_it_mails_the_heads_and_the_creator_once_per_threshold(
    trabajador, smtp, personas, tipo, soporte, redes, dev
):
    hoy = timezone.localdate()
    creador = personas["creador"]
    credencial = _crear(tipo, soporte, dev, hoy + timedelta(days=7), creador)
    _crear(tipo, soporte, None, hoy + timedelta(days=45), creador, "lejos@example.com")
    _crear(tipo, soporte, None, hoy - timedelta(days=1), creador, "vencida@example.com")
    _crear(tipo, soporte, None, None, creador, "sin-fecha@example.com")

    with trabajador():
        assert avisar_vencimientos_task.delay().get(timeout=60) == 1
        assert credenciales_avisar_vencimientos() == 0  # a second run sends nothing
        esperar(lambda: len(smtp.messages) == 2)
    correos = _correos(smtp)
    assert [c[0] for c in correos] == [("creador@example.com",), ("jefa@example.com",)]
    asunto, cuerpo = correos[0][1], correos[0][2]
    assert "Email Corporativo · app@example.com" in asunto
    assert (
        "Soporte - Desarrollo" in cuerpo and f"/credenciales/credencial/{credencial.pk}/" in cuerpo
    )
    assert all(SECRETO not in c[1] + c[2] for c in correos)
    assert set(Notificacion.objects.values_list("estado", flat=True)) == {"enviada"}
    assert not Notificacion.objects.filter(ticket__isnull=False).exists()

    # Two days later it is still at the 7-day threshold: nothing; at one day left, again.
    smtp.messages.clear()
    with trabajador():
        assert credenciales_avisar_vencimientos(hoy=hoy + timedelta(days=2)) == 0
        assert credenciales_avisar_vencimientos(hoy=hoy + timedelta(days=6)) == 1
        esperar(lambda: len(smtp.messages) == 2)

    # A new expiry date arms the reminders again.
    smtp.messages.clear()
    services.credencial_editar(credencial=credencial, vence=hoy + timedelta(days=6), por=creador)
    with trabajador():
        assert credenciales_avisar_vencimientos() == 1
        assert credenciales_avisar_vencimientos() == 0
        esperar(lambda: len(smtp.messages) == 2)
    assert all(SECRETO not in c[1] + c[2] for c in _correos(smtp))


def test_it_tells_nobody_outside_the_department_nor_a_creator_who_left(
    smtp, personas, tipo, soporte, redes
):
    hoy = timezone.localdate()
    creador = personas["creador"]
    _crear(tipo, soporte, None, hoy + timedelta(days=1), creador)
    creador.departamento = redes
    creador.save()
    credenciales_avisar_vencimientos()
    destinos = set(Notificacion.objects.values_list("correo", flat=True))
    assert destinos == {"jefa@example.com"}


def test_it_writes_nothing_without_anyone_to_tell_and_tries_again_later(personas, tipo, redes):
    hoy = timezone.localdate()
    personas["jefe_redes"].jefe = False
    personas["jefe_redes"].save()
    _crear(tipo, redes, None, hoy + timedelta(days=7), None)
    assert credenciales_avisar_vencimientos() == 0
    assert not Notificacion.objects.exists()
    personas["jefe_redes"].jefe = True
    personas["jefe_redes"].save()
    assert credenciales_avisar_vencimientos() == 1
    assert list(Notificacion.objects.values_list("correo", flat=True)) == ["jeferedes@example.com"]


def test_it_sends_nothing_with_no_thresholds(settings, personas, tipo, soporte):
    settings.CREDENCIALES_AVISO_DIAS = []
    _crear(tipo, soporte, None, timezone.localdate(), personas["creador"])
    assert credenciales_avisar_vencimientos() == 0


def test_it_writes_each_reminder_once_under_two_concurrent_runs(postgres, personas, tipo, soporte):
    _crear(tipo, soporte, None, timezone.localdate() + timedelta(days=30), personas["creador"])
    salida = threading.Barrier(2)
    resultados, errores = [], []

    def correr():
        from django.db import connection

        try:
            salida.wait()
            resultados.append(credenciales_avisar_vencimientos())
        except Exception as exc:  # the test fails on it
            errores.append(exc)
        finally:
            connection.close()

    hilos = [threading.Thread(target=correr) for _ in range(2)]
    for h in hilos:
        h.start()
    for h in hilos:
        h.join(timeout=60)
    assert errores == []
    assert sorted(resultados) == [0, 1]
    assert sorted(Notificacion.objects.values_list("correo", flat=True)) == [
        "creador@example.com",
        "jefa@example.com",
    ]


def test_it_is_scheduled_daily_and_overridable():
    entrada = settings.CELERY_BEAT_SCHEDULE["avisar-vencimientos"]
    assert entrada["task"] == "credenciales.avisar_vencimientos"
    assert entrada["schedule"] == 86400
