"""SLA clocks: business minutes, the pause while waiting on the customer, and the sweep."""

import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from incidencias import configuracion, notificaciones
from incidencias.ingest import ingest_raw
from incidencias.models import (
    Calendario,
    DetalleTicket,
    EstadoSLA,
    Feriado,
    Notificacion,
    PoliticaSLA,
    ReglaDepartamento,
    Ticket,
)
from incidencias.selectors import tickets_sla
from incidencias.services import ticket_cambiar_estado, ticket_registrar_primera_respuesta
from incidencias.sla import (
    minutos_habiles_entre,
    sla_barrer,
    sla_estado_cambiado,
    sla_fijar_plazos,
    sla_proximo,
    sumar_minutos_habiles,
)
from sso.models import Usuario
from tests.notificaciones.conftest import CanalDePrueba

CR = ZoneInfo("America/Costa_Rica")
Evento = Notificacion.Evento
# Friday 6 March 2026, then the weekend; Monday 9 March is a holiday in the fixture calendar.
VIERNES = date(2026, 3, 6)
LUNES, MARTES = date(2026, 3, 9), date(2026, 3, 10)


def cr(dia: date, hora: str) -> datetime:
    h, m = (int(x) for x in hora.split(":"))
    return datetime(dia.year, dia.month, dia.day, h, m, tzinfo=CR)


@pytest.fixture
def canales():
    """Stand-ins for Synology and email, to see who hears of what."""
    antes = dict(notificaciones._canales)
    for nombre in ("synology", "correo"):
        notificaciones.canal_registrar(CanalDePrueba(nombre))
    yield
    notificaciones._canales.clear()
    notificaciones._canales.update(antes)


@pytest.fixture
def calendario(db):
    """Monday to Friday 08:00–17:00 in Costa Rica."""
    return Calendario.objects.create(
        nombre="Oficina", horario={str(d): [["08:00", "17:00"]] for d in range(5)}
    )


@pytest.fixture
def politica(soporte, calendario):
    """Normal priority: first response in 2 business hours, resolution in 8."""
    return PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad="normal",
        primera_respuesta_min=120,
        resolucion_min=480,
        calendario=calendario,
    )


@pytest.fixture
def ana(soporte):
    return Usuario.objects.create_user(
        username="ana", email="ana@example.com", password="x", departamento=soporte, id_synology=41
    )


@pytest.fixture
def jefa(soporte):
    return Usuario.objects.create_user(
        username="jefa",
        email="jefa@example.com",
        password="x",
        departamento=soporte,
        jefe=True,
        id_synology=42,
    )


_numeros = iter(range(1000, 10**6))


def nuevo_ticket(soporte, desde, asignado=None, **campos) -> Ticket:
    """A ticket whose clock starts at `desde`, as the pipeline creates it."""
    ticket = Ticket(numero=next(_numeros), departamento=soporte, asignado=asignado, **campos)
    assert sla_fijar_plazos(ticket=ticket, desde=desde)
    ticket.save()
    return ticket


def test_it_counts_business_minutes_across_nights_weekends_and_holidays(calendario):
    feriados = {LUNES}
    # Friday 16:00 + 2 h: one hour on Friday, the weekend and the holiday closed, one on Tuesday.
    assert sumar_minutos_habiles(cr(VIERNES, "16:00"), 120, calendario, feriados) == cr(
        MARTES, "09:00"
    )
    # Before opening: counting starts at 08:00.
    assert sumar_minutos_habiles(cr(MARTES, "06:30"), 30, calendario) == cr(MARTES, "08:30")
    # After closing: the next day.
    assert sumar_minutos_habiles(cr(MARTES, "18:00"), 60, calendario) == cr(
        date(2026, 3, 11), "09:00"
    )
    assert (
        minutos_habiles_entre(cr(VIERNES, "16:00"), cr(MARTES, "09:00"), calendario, feriados)
        == 120
    )
    assert minutos_habiles_entre(cr(VIERNES, "17:30"), cr(LUNES, "07:45"), calendario) == 0
    assert minutos_habiles_entre(cr(VIERNES, "23:00"), cr(VIERNES, "22:00"), calendario) == 0
    veinticuatro = Calendario(nombre="24/7", horario={})
    assert minutos_habiles_entre(cr(VIERNES, "16:00"), cr(LUNES, "16:00"), veinticuatro) == 4320


@pytest.mark.django_db
def test_it_sets_warnings_at_the_configured_share_of_each_target(soporte, politica):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    assert ticket.vence_primera_respuesta == cr(MARTES, "10:00")
    assert ticket.aviso_primera_respuesta == cr(MARTES, "09:36")  # 80% of 120 min
    assert ticket.vence_resolucion == cr(MARTES, "16:00")
    assert ticket.aviso_resolucion == cr(MARTES, "14:24")
    assert ticket.sla_proximo == ticket.aviso_primera_respuesta

    with override_settings(SLA_AVISO_PORCENTAJE=50):
        assert nuevo_ticket(soporte, cr(MARTES, "08:00")).aviso_primera_respuesta == cr(
            MARTES, "09:00"
        )
    Feriado.objects.create(calendario=politica.calendario, fecha=LUNES, nombre="Feriado")
    configuracion.olvidar()
    sobre_feriado = nuevo_ticket(soporte, cr(VIERNES, "16:00"))
    assert sobre_feriado.vence_primera_respuesta == cr(MARTES, "09:00")
    politica.aviso_porcentaje = 25
    politica.save()
    configuracion.olvidar()
    assert nuevo_ticket(soporte, cr(MARTES, "08:00")).aviso_primera_respuesta == cr(MARTES, "08:30")


@pytest.mark.django_db
def test_it_sets_warnings_on_tickets_the_pipeline_creates(soporte, politica):
    ReglaDepartamento.objects.create(
        campo="destinatario", valor="soporte@example.com", departamento=soporte
    )
    raw = (
        b"From: Cliente <cliente@example.org>\r\nTo: soporte@example.com\r\nSubject: Caido\r\n"
        b"Message-ID: <sla-1@example.org>\r\n\r\nNo hay servicio.\r\n"
    )
    with time_machine.travel(cr(MARTES, "08:00"), tick=False):
        ticket = ingest_raw(raw).ticket
    ticket.refresh_from_db()
    assert ticket.aviso_primera_respuesta == cr(MARTES, "09:36")
    assert ticket.aviso_resolucion == cr(MARTES, "14:24")
    assert ticket.sla_proximo == cr(MARTES, "09:36")


@pytest.mark.django_db
def test_it_stops_the_clock_while_waiting_on_the_customer(soporte, politica, ana):
    ticket = nuevo_ticket(soporte, cr(VIERNES, "14:00"), ana)
    assert ticket.vence_primera_respuesta == cr(VIERNES, "16:00")
    assert ticket.vence_resolucion == cr(LUNES, "13:00")
    with time_machine.travel(cr(VIERNES, "15:00"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="en_espera", por=ana)
    assert ticket.sla_pausado_en == cr(VIERNES, "15:00")
    assert ticket.sla_proximo is None
    assert sla_barrer(ahora=cr(LUNES, "12:00")).avisos == 0  # paused: never flagged
    # The customer answers on Monday 08:30: 150 business minutes stood still (2 h on Friday,
    # 30 min on Monday), so every unmet target moves by as much.
    with time_machine.travel(cr(LUNES, "08:30"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="abierto")
    assert ticket.sla_pausado_en is None
    assert ticket.vence_primera_respuesta == cr(LUNES, "09:30")
    assert ticket.aviso_primera_respuesta == cr(LUNES, "09:06")
    assert ticket.vence_resolucion == cr(LUNES, "15:30")
    assert ticket.sla_proximo == cr(LUNES, "09:06")
    assert list(ticket.detalles.values_list("texto", flat=True)) == [
        "Estado: nuevo → en espera del cliente",
        "Estado: en espera del cliente → abierto",
    ]


@pytest.mark.django_db
def test_a_breach_already_raised_stays_a_breach_after_a_pause(soporte, politica, ana):
    ticket = nuevo_ticket(soporte, cr(VIERNES, "14:00"), ana)
    assert sla_barrer(ahora=cr(VIERNES, "16:30")).incumplidos == 1  # first response missed
    with time_machine.travel(cr(VIERNES, "16:45"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="en_espera", por=ana)
    with time_machine.travel(cr(LUNES, "08:30"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="abierto")
    assert ticket.vence_primera_respuesta == cr(VIERNES, "16:00")  # not moved by the pause
    assert ticket.vence_resolucion == cr(LUNES, "13:45")  # moved by 45 business minutes
    with time_machine.travel(cr(LUNES, "08:31"), tick=False):
        assert tickets_sla(tickets=Ticket.objects.filter(pk=ticket.pk)).get().estado_sla == (
            "incumplido"
        )


@pytest.mark.django_db
def test_it_adds_nothing_for_a_pause_outside_business_hours(soporte, politica):
    ticket = nuevo_ticket(soporte, cr(VIERNES, "14:00"))
    with time_machine.travel(cr(VIERNES, "17:30"), tick=False):
        ticket_cambiar_estado(ticket=ticket, estado="en_espera")
    with time_machine.travel(cr(LUNES, "07:45"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="abierto")
    assert ticket.vence_resolucion == cr(LUNES, "13:00")


@pytest.mark.django_db
def test_it_resumes_the_clock_on_the_customer_reply_path(soporte, politica):
    """What the pipeline calls when a reply reopens a waiting ticket (in memory, then saved)."""
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    with time_machine.travel(cr(MARTES, "09:00"), tick=False):
        ticket_cambiar_estado(ticket=ticket, estado="en_espera")
    ticket.refresh_from_db()
    anterior, ticket.estado = ticket.estado, Ticket.Estado.ABIERTO
    campos = sla_estado_cambiado(ticket=ticket, anterior=anterior, ahora=cr(MARTES, "10:00"))
    ticket.save(update_fields=["estado", *campos])
    ticket.refresh_from_db()
    assert ticket.vence_primera_respuesta == cr(MARTES, "11:00")
    assert ticket.sla_pausado_en is None and ticket.sla_proximo == cr(MARTES, "10:36")


@pytest.mark.django_db
def test_it_records_first_response_and_resolution(soporte, politica, ana, canales):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"), ana)
    with time_machine.travel(cr(MARTES, "09:00"), tick=False):
        ticket = ticket_registrar_primera_respuesta(ticket=ticket)
    assert ticket.primera_respuesta_en == cr(MARTES, "09:00")
    assert ticket.sla_proximo == cr(MARTES, "14:24")  # only the resolution is left
    ticket_registrar_primera_respuesta(ticket=ticket, en=cr(MARTES, "09:30"))
    ticket.refresh_from_db()
    assert ticket.primera_respuesta_en == cr(MARTES, "09:00")  # the first one stays
    assert sla_barrer(ahora=cr(MARTES, "12:00")).avisos == 0  # first response met in time
    with time_machine.travel(cr(MARTES, "13:00"), tick=False):
        ticket = ticket_cambiar_estado(ticket=ticket, estado="resuelto", por=ana)
    assert ticket.resuelto_en == cr(MARTES, "13:00") and ticket.sla_proximo is None
    barrido = sla_barrer(ahora=cr(date(2026, 3, 20), "12:00"))
    assert (barrido.avisos, barrido.incumplidos) == (0, 0)  # resolved: never flagged
    assert not Notificacion.objects.exists()
    assert tickets_sla(estado=EstadoSLA.OK).get() == ticket


@pytest.mark.django_db
def test_it_raises_the_warning_and_the_breach_once_and_escalates_to_the_jefe(
    soporte, politica, ana, jefa, canales
):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"), ana)
    assert sla_barrer(ahora=cr(MARTES, "09:35")).avisos == 0
    assert sla_barrer(ahora=cr(MARTES, "09:40")).avisos == 1
    assert sla_barrer(ahora=cr(MARTES, "09:45")).avisos == 0  # a second sweep raises nothing
    aviso = Notificacion.objects.get(evento=Evento.SLA_AVISO)
    assert (aviso.usuario, aviso.canal) == (ana, "synology")
    assert aviso.unico == f"sla_aviso:{ticket.pk}:primera_respuesta"
    assert aviso.datos == {
        "objetivo": "primera_respuesta",
        "vence": cr(MARTES, "10:00").isoformat(),
    }
    ticket.refresh_from_db()
    assert ticket.avisado_primera_respuesta_en == cr(MARTES, "09:40")
    assert ticket.sla_proximo == cr(MARTES, "10:00") == sla_proximo(ticket)
    assert tickets_sla(ahora=cr(MARTES, "09:50")).get().estado_sla == EstadoSLA.EN_RIESGO

    barrido = sla_barrer(ahora=cr(MARTES, "10:05"))
    assert (barrido.avisos, barrido.incumplidos, barrido.prioridades) == (0, 1, 0)
    assert sla_barrer(ahora=cr(MARTES, "10:10")).incumplidos == 0
    incumplido = Notificacion.objects.filter(evento=Evento.SLA_INCUMPLIDO)
    assert sorted((n.usuario.username, n.canal) for n in incumplido) == [
        ("ana", "correo"),
        ("ana", "synology"),
        ("jefa", "correo"),
        ("jefa", "synology"),
    ]
    ticket.refresh_from_db()
    assert ticket.incumplido_primera_respuesta_en == cr(MARTES, "10:05")
    assert ticket.prioridad == "normal"  # no raise unless SLA_SUBIR_PRIORIDAD
    assert ticket.sla_proximo == cr(MARTES, "14:24") == sla_proximo(ticket)
    assert tickets_sla(ahora=cr(MARTES, "10:10")).get().estado_sla == EstadoSLA.INCUMPLIDO

    # Straight past both moments of the resolution: only the breach is raised.
    assert (sla_barrer(ahora=cr(MARTES, "16:30")).avisos, Notificacion.objects.count()) == (0, 9)
    ticket.refresh_from_db()
    assert ticket.sla_proximo is None
    assert Notificacion.objects.filter(unico=f"sla_aviso:{ticket.pk}:resolucion").count() == 0


@pytest.mark.django_db
def test_it_tells_the_jefe_of_a_breach_on_an_unassigned_ticket(soporte, politica, jefa, canales):
    nuevo_ticket(soporte, cr(MARTES, "08:00"))
    sla_barrer(ahora=cr(MARTES, "10:05"))
    assert sorted(
        Notificacion.objects.filter(evento=Evento.SLA_INCUMPLIDO).values_list(
            "usuario__username", "canal"
        )
    ) == [("jefa", "correo"), ("jefa", "synology")]


@pytest.mark.django_db
@override_settings(SLA_SUBIR_PRIORIDAD=True)
def test_it_raises_the_priority_one_step_on_a_breach_when_set(soporte, politica, canales):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    barrido = sla_barrer(ahora=cr(MARTES, "10:05"))
    assert barrido.prioridades == 1
    ticket.refresh_from_db()
    assert ticket.prioridad == "alta"
    evento = ticket.detalles.get(tipo=DetalleTicket.Tipo.EVENTO)
    assert evento.texto == (
        "Prioridad elevada de normal a alta por incumplimiento del SLA (primera respuesta)"
    )
    sla_barrer(ahora=cr(MARTES, "16:30"))  # the resolution breach: one more step
    ticket.refresh_from_db()
    assert ticket.prioridad == "urgente"
    # Both targets breached in one sweep: two steps.
    otro = nuevo_ticket(soporte, cr(MARTES, "08:00"), prioridad="normal")
    assert sla_barrer(ahora=cr(MARTES, "16:30")).prioridades == 2
    otro.refresh_from_db()
    assert otro.prioridad == "urgente"
    assert otro.detalles.count() == 2


@pytest.mark.django_db
def test_it_leaves_the_priority_alone_by_default(soporte, politica, canales):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    assert sla_barrer(ahora=cr(MARTES, "16:30")).prioridades == 0
    ticket.refresh_from_db()
    assert ticket.prioridad == "normal" and not ticket.detalles.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("subir", [False, True], ids=["same-priority", "priority-raised"])
def test_it_sweeps_in_a_constant_number_of_queries(
    soporte, politica, ana, jefa, canales, monkeypatch, settings, subir
):
    settings.SLA_SUBIR_PRIORIDAD = subir
    if connection.vendor == "sqlite":
        # Django splits bulk inserts at SQLite's historical 999 parameters; the SQLite we run
        # on (>= 3.32) takes 32,766, as PostgreSQL takes 65,535.
        monkeypatch.setattr(connection.features, "max_query_params", 32766)

    def barrer(n):
        Notificacion.objects.all().delete()
        Ticket.objects.all().delete()
        for _ in range(n):
            nuevo_ticket(soporte, cr(MARTES, "08:00"), ana)
        # Half past the warning only, half past the breach.
        Ticket.objects.filter(pk__in=Ticket.objects.values("pk")[: n // 2]).update(
            avisado_primera_respuesta_en=cr(MARTES, "09:40")
        )
        with CaptureQueriesContext(connection) as consultas:
            barrido = sla_barrer(ahora=cr(MARTES, "10:05"))
        assert barrido.incumplidos == n
        assert Notificacion.objects.count() == 4 * n
        assert Ticket.objects.filter(prioridad="alta" if subir else "normal").count() == n
        return [q["sql"].split()[0] for q in consultas]

    barrer(1)  # the per-process caches (preferences, policies) are loaded
    assert barrer(5) == barrer(50)


@pytest.mark.django_db
def test_it_shows_the_sla_status_to_selectors_and_the_admin(soporte, politica, admin_client):
    ok = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    riesgo = nuevo_ticket(soporte, cr(MARTES, "07:00"))  # same, clock starts at 08:00
    Ticket.objects.filter(pk=riesgo.pk).update(aviso_primera_respuesta=cr(MARTES, "08:30"))
    tarde = nuevo_ticket(soporte, cr(date(2026, 3, 9), "08:00"))
    pausado = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    with time_machine.travel(cr(MARTES, "08:15"), tick=False):
        ticket_cambiar_estado(ticket=pausado, estado="en_espera")
    ahora = cr(MARTES, "09:00")
    estados = dict(tickets_sla(ahora=ahora).values_list("pk", "estado_sla"))
    assert estados == {
        ok.pk: "ok",
        riesgo.pk: "en_riesgo",
        tarde.pk: "incumplido",
        pausado.pk: "pausado",
    }
    # Both requests at the same moment: the session's idle clock must not see months pass.
    with time_machine.travel(ahora, tick=False):
        pagina = admin_client.get("/admin/incidencias/ticket/?sla=incumplido")
        cambio = admin_client.get(f"/admin/incidencias/ticket/{pausado.pk}/change/")
    assert pagina.status_code == 200
    assert list(pagina.context["cl"].result_list) == [Ticket.objects.get(pk=tarde.pk)]
    assert cambio.status_code == 200


@pytest.mark.django_db
def test_it_changes_state_from_the_admin_through_the_service(soporte, politica, admin_client):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    url = f"/admin/incidencias/ticket/{ticket.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    datos = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    datos.update(estado="en_espera", participantes="[]")
    datos.update(
        {
            "detalles-TOTAL_FORMS": "0",
            "detalles-INITIAL_FORMS": "0",
            "detalles-MIN_NUM_FORMS": "0",
            "detalles-MAX_NUM_FORMS": "1000",
        }
    )
    with time_machine.travel(cr(MARTES, "09:00"), tick=False):
        respuesta = admin_client.post(url, datos)
    assert respuesta.status_code == 302, respuesta.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.estado == "en_espera" and ticket.sla_pausado_en == cr(MARTES, "09:00")


@pytest.mark.django_db(transaction=True)
def test_it_raises_each_event_once_under_concurrent_sweeps(
    postgres, soporte, politica, ana, jefa, canales
):
    tickets = [nuevo_ticket(soporte, cr(MARTES, "08:00"), ana) for _ in range(30)]
    barrera = threading.Barrier(2)
    resultados, errores = [], []

    def barrer():
        try:
            barrera.wait(timeout=10)
            resultados.append(sla_barrer(ahora=cr(MARTES, "10:05")))
        except Exception as exc:  # reported below
            errores.append(exc)
        finally:
            close_old_connections()
            connection.close()

    hilos = [threading.Thread(target=barrer) for _ in range(2)]
    for h in hilos:
        h.start()
    for h in hilos:
        h.join(timeout=30)
    assert not errores
    assert sum(r.incumplidos for r in resultados) == len(tickets)
    unicos = Notificacion.objects.filter(evento=Evento.SLA_INCUMPLIDO, unico__contains=":primera")
    assert unicos.exclude(unico__contains="#").count() == len(tickets)
    assert Notificacion.objects.filter(evento=Evento.SLA_INCUMPLIDO).count() == 4 * len(tickets)


def test_the_admin_assigns_through_the_service(soporte, politica, admin_client, ana):
    ticket = nuevo_ticket(soporte, cr(MARTES, "08:00"))
    url = f"/admin/incidencias/ticket/{ticket.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    datos = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    datos.update(asignado=str(ana.pk), participantes="[]")
    datos.update(
        {
            "detalles-TOTAL_FORMS": "0",
            "detalles-INITIAL_FORMS": "0",
            "detalles-MIN_NUM_FORMS": "0",
            "detalles-MAX_NUM_FORMS": "1000",
        }
    )
    respuesta = admin_client.post(url, datos)

    assert respuesta.status_code == 302, respuesta.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.asignado == ana
    assert list(ticket.detalles.values_list("texto", flat=True)) == ["Asignado a ana"]
    assert Notificacion.objects.filter(evento="asignacion", usuario=ana).exists()
