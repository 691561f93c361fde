"""The email channel against a real SMTP server (aiosmtpd), and the pipeline's events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidencias.ingest import ingest_lote, ingest_raw
from incidencias.models import CorreoFallido, Notificacion, Ticket
from incidencias.notificaciones import notificacion_entregar, notificar

from .conftest import correo_entrante

pytestmark = pytest.mark.django_db
Evento = Notificacion.Evento


def entregar_todas():
    for pk in (
        Notificacion.objects.filter(estado="pendiente").order_by("id").values_list("pk", flat=True)
    ):
        notificacion_entregar(pk=pk)


def test_it_mails_the_assignee_with_our_message_id_and_the_ticket_tag(smtp, ticket):
    (fila,) = [n for n in notificar(evento=Evento.ASIGNACION, ticket=ticket) if n.canal == "correo"]
    assert notificacion_entregar(pk=fila.pk) == "enviada"
    (mail,) = smtp.para("ana@example.com")
    assert mail["Subject"] == "Asignado a usted: No hay internet [Ticket #132]"
    assert mail["Message-ID"] == f"<{fila.message_id}>"
    assert mail["X-Incidencias-Ticket"] == "132"
    assert mail["Auto-Submitted"] == "auto-generated"
    texto = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert f"/tickets/{ticket.numero}/" in texto
    assert "Soporte" in texto and "Soporte" in html
    fila.refresh_from_db()
    assert (fila.estado, fila.intentos, fila.resultado) == (
        "enviada", 1, "Enviada a ana@example.com",
    )  # fmt: skip
    assert fila.enviado_en is not None


def test_it_mails_an_sla_breach_to_the_assignee_and_the_heads(smtp, ticket, jefa):
    datos = {"objetivo": "resolucion", "vence": "2026-03-10T16:00:00+00:00"}
    notificar(evento=Evento.SLA_INCUMPLIDO, ticket=ticket, datos=datos, unico="x")
    entregar_todas()
    for direccion in ("ana@example.com", "jefa@example.com"):
        (mail,) = smtp.para(direccion)
        assert mail["Subject"] == "SLA incumplido: No hay internet [Ticket #132]"
        assert "resolución" in mail.get_body(("plain",)).get_content()
        assert "2026-03-10 10:00" in mail.get_body(("plain",)).get_content()  # Costa Rica time


def test_a_new_ticket_acknowledges_the_requester_in_their_language(smtp, regla, asignado):
    ingest_raw(correo_entrante(de="Ann <ann@example.net>", extra="Content-Language: en-GB\r\n"))
    ingest_raw(correo_entrante(de="Beto <beto@example.net>"))
    entregar_todas()
    (ingles,) = smtp.para("ann@example.net")
    (espanol,) = smtp.para("beto@example.net")
    numero_en, numero_es = Ticket.objects.order_by("id").values_list("numero", flat=True)
    assert ingles["Subject"] == f"We have received your message: Sin servicio [Ticket #{numero_en}]"
    assert espanol["Subject"] == (f"Hemos recibido su mensaje: Sin servicio [Ticket #{numero_es}]")
    assert "Hello Ann" in ingles.get_body(("plain",)).get_content()
    assert "Hola Beto" in espanol.get_body(("plain",)).get_content()
    assert ingles["Auto-Submitted"] == "auto-replied"
    assert ingles["In-Reply-To"].startswith("<") and "@example.org>" in ingles["In-Reply-To"]
    # The requester gets no link into the back office; the assignee gets one.
    assert "/admin/" not in ingles.get_body(("plain",)).get_content()
    assert len(smtp.para("ana@example.com")) == 2  # assigned both tickets (round robin of one)


@pytest.mark.parametrize(
    ("de", "extra"),
    [
        ("Cliente <cliente@example.org>", "Auto-Submitted: auto-replied\r\n"),
        ("Cliente <cliente@example.org>", "Precedence: bulk\r\n"),
        ("Avisos <no-reply@example.org>", ""),
        ("MAILER-DAEMON@example.org", ""),
    ],
)
def test_machine_mail_gets_no_acknowledgement_and_no_notification(smtp, regla, de, extra):
    resultado = ingest_raw(correo_entrante(de=de, extra=extra))
    assert resultado.creado
    assert Notificacion.objects.count() == 0
    assert (resultado.notificacion_synology, resultado.notificacion_correo) == (
        "No emitida", "No emitida",
    )  # fmt: skip


def test_a_requester_is_acknowledged_at_most_once_per_window(smtp, regla, settings):
    settings.NOTIFICACIONES_ACUSE_VENTANA_MINUTOS = 60
    ingest_raw(correo_entrante(asunto="Uno"))
    ingest_raw(correo_entrante(asunto="Dos", de="CLIENTE@example.org"))
    assert Notificacion.objects.filter(evento=Evento.ACUSE).count() == 1
    Notificacion.objects.update(creado=timezone.now() - timedelta(minutes=61))
    ingest_raw(correo_entrante(asunto="Tres"))
    assert Notificacion.objects.filter(evento=Evento.ACUSE).count() == 2
    assert Ticket.objects.count() == 3


def test_a_batch_acknowledges_each_requester_once(smtp, regla):
    resultados = ingest_lote(
        [
            correo_entrante(asunto="Uno"),
            correo_entrante(asunto="Dos", de="Cliente <CLIENTE@example.org>"),
            correo_entrante(asunto="Tres", de="Otra <otra@example.org>"),
        ]
    )
    assert all(r.creado for r in resultados)
    acuses = Notificacion.objects.filter(evento=Evento.ACUSE).order_by("id")
    assert [(n.ticket_id, n.correo) for n in acuses] == [
        (resultados[0].ticket.pk, "cliente@example.org"),
        (resultados[2].ticket.pk, "otra@example.org"),
    ]
    assert resultados[0].notificacion_correo.startswith("En cola")
    assert resultados[1].notificacion_correo == "No emitida"


def test_a_reply_to_our_acknowledgement_threads_to_its_ticket(smtp, regla, synology):
    primero = ingest_raw(correo_entrante(asunto="Sin servicio"))
    entregar_todas()
    (acuse,) = smtp.para("cliente@example.org")
    respuesta = ingest_raw(
        correo_entrante(
            asunto="Re: algo distinto",  # no tag: threaded by In-Reply-To alone
            extra=f"In-Reply-To: {acuse['Message-ID']}\r\nReferences: {acuse['Message-ID']}\r\n",
            cuerpo="Sigue sin funcionar.",
        )
    )
    assert not respuesta.creado
    assert respuesta.ticket.pk == primero.ticket.pk
    (aviso,) = Notificacion.objects.filter(evento=Evento.RESPUESTA_CLIENTE)
    assert (aviso.canal, aviso.destino, aviso.detalle_id) == (
        "synology", "canal soporte", respuesta.detalle.pk,
    )  # fmt: skip
    assert respuesta.notificacion_synology == "En cola: canal soporte"


def test_our_own_mail_coming_back_is_dropped_as_a_loop(smtp, regla):
    ingest_raw(correo_entrante())
    entregar_todas()
    ((_, _, crudo),) = [m for m in smtp.mensajes if "cliente@example.org" in m[0]]
    resultado = ingest_raw(crudo)
    assert resultado.ticket is None
    assert resultado.fallido.motivo == CorreoFallido.Motivo.BUCLE


def test_a_temporary_refusal_is_retried_and_a_permanent_one_fails(smtp, ticket, settings):
    settings.NOTIFICACIONES_BACKOFF_SEGUNDOS = 0
    smtp.respuestas = ["451 4.3.0 Try again later", "550 5.1.1 No such user"]
    (fila,) = [n for n in notificar(evento=Evento.ASIGNACION, ticket=ticket) if n.canal == "correo"]
    assert notificacion_entregar(pk=fila.pk) == "pendiente"
    fila.refresh_from_db()
    assert (fila.intentos, fila.ultimo_error[:21]) == (1, "ErrorPasajero: SMTP 4")
    assert notificacion_entregar(pk=fila.pk) == "fallida"
    fila.refresh_from_db()
    assert fila.intentos == 2 and "550" in fila.ultimo_error
    assert smtp.mensajes == []


def test_an_smtp_server_that_is_down_is_a_passing_error(ticket, settings):
    from .conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    (fila,) = [n for n in notificar(evento=Evento.ASIGNACION, ticket=ticket) if n.canal == "correo"]
    assert notificacion_entregar(pk=fila.pk) == "pendiente"
    fila.refresh_from_db()
    assert fila.ultimo_error.startswith("ErrorPasajero: ConnectionRefusedError")
    assert fila.proximo_intento > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_two_transactions_at_once_acknowledge_a_requester_once(regla, redes, settings):
    """Two mailboxes' batches with mail of the same person, at the same time, for two
    departments (nothing else makes one wait for the other): the second waits for the first's
    acknowledgement lock, then sees its row and sends none."""
    import threading
    import time

    from django.db import connection, transaction

    from incidencias.models import ReglaDepartamento

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite runs one writer at a time")
    settings.NOTIFICACIONES_ACUSE_VENTANA_MINUTOS = 60
    ReglaDepartamento.objects.create(
        campo="destinatario", valor="redes@example.com", departamento=redes
    )
    dentro, seguir, errores = threading.Event(), threading.Event(), []

    def primero():
        try:
            with transaction.atomic():
                ingest_raw(correo_entrante(asunto="Uno"))
                dentro.set()
                seguir.wait(60)  # holds its transaction (and the lock) open
        except Exception as exc:  # reported below
            errores.append(exc)
        finally:
            connection.close()

    def segundo():
        try:
            dentro.wait(60)
            ingest_raw(
                correo_entrante(asunto="Dos", de="CLIENTE@example.org", para="redes@example.com")
            )
        except Exception as exc:
            errores.append(exc)
        finally:
            connection.close()

    hilos = [threading.Thread(target=primero), threading.Thread(target=segundo)]
    for hilo in hilos:
        hilo.start()
    try:
        assert dentro.wait(60)
        # The second batch comes to wait on the advisory lock the first one holds.
        limite, esperando = time.monotonic() + 60, 0
        with connection.cursor() as cursor:
            while not esperando and time.monotonic() < limite:
                time.sleep(0.05)
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                esperando = cursor.fetchone()[0]
        assert esperando == 1
        assert errores == [] and Ticket.objects.count() == 0  # neither has committed
    finally:
        seguir.set()
        for hilo in hilos:
            hilo.join(60)
    assert errores == []
    assert sorted(Ticket.objects.values_list("departamento__nombre", flat=True)) == [
        "Redes",
        "Soporte",
    ]
    (acuse,) = Notificacion.objects.filter(evento=Evento.ACUSE)
    assert acuse.ticket.asunto == "Uno"
