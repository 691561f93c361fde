"""notificar_lote (the SLA sweep's batch): COPY on PostgreSQL writes what the ORM writes, a key
already recorded is skipped, and the indexes the outbox keeps serve the queries that need them."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidencias import notificaciones
from incidencias.models import DetalleTicket, Notificacion, PreferenciaNotificacion
from incidencias.notificaciones import notificar, notificar_lote

Evento = Notificacion.Evento
Destinatario = PreferenciaNotificacion.Destinatario
AHORA = datetime(2026, 3, 10, 15, 5, tzinfo=UTC)
CAMPOS = [
    f.attname for f in Notificacion._meta.concrete_fields if f.attname not in ("id", "message_id")
]


@pytest.fixture
def eventos(correo_de_prueba, soporte, ticket, jefa):
    """Events reaching every kind of destination: the department's channel and address, the
    assignee, the heads, the requester (in English, by their mail), and nobody at all."""
    soporte.correo = "soporte@example.com"
    soporte.save()
    for destinatario, canal in [
        (Destinatario.DEPARTAMENTO, "synology"),
        (Destinatario.DEPARTAMENTO, "correo"),
        (Destinatario.SOLICITANTE, "correo"),
    ]:
        PreferenciaNotificacion.objects.create(
            departamento=soporte,
            evento=Evento.SLA_AVISO,
            destinatario=destinatario,
            canal=canal,
            activa=True,
        )
    detalle = DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.ENTRANTE, headers={"content-language": "en-GB"}
    )
    datos = {"objetivo": "resolucion", "vence": "2026-03-10T09:05:00-06:00", "nota": 'a\t"b"\\'}
    return [
        {"evento": Evento.SLA_AVISO, "ticket": ticket, "detalle": detalle, "datos": datos},
        {"evento": Evento.SLA_INCUMPLIDO, "ticket": ticket, "datos": {"objetivo": "resolucion"}},
        {"evento": Evento.RESPUESTA_ENVIADA, "ticket": ticket},  # nobody: a discarded row
    ]


def _lote(eventos, sufijo=""):
    return notificar_lote(
        [dict(e, unico=f"{e['evento']}:{e['ticket'].pk}{sufijo}") for e in eventos]
    )


def _filas():
    filas = []
    for n in Notificacion.objects.order_by("unico"):
        fila = {campo: getattr(n, campo) for campo in CAMPOS}
        fila["message_id"] = n.message_id.partition("@")[2] if n.message_id else ""
        filas.append(fila)
    return filas


@pytest.mark.django_db
def test_it_writes_the_same_rows_with_copy_as_with_the_orm(postgres, eventos, monkeypatch):
    with time_machine.travel(AHORA, tick=False):
        por_copy = _lote(eventos)
        filas_copy = _filas()
        pendientes = list(Notificacion.objects.filter(estado="pendiente").order_by("id"))
        Notificacion.objects.all().delete()
        monkeypatch.setattr(notificaciones, "_por_copy", lambda: False)
        por_orm = _lote(eventos)
        filas_orm = _filas()

    assert filas_copy == filas_orm
    assert len(filas_copy) == 9  # 4 + 4 + 1 discarded
    assert {f["idioma"] for f in filas_copy if f["correo"] == "cliente@example.org"} == {"en"}
    assert {f["canal"] for f in filas_copy if f["estado"] == "descartada"} == {""}
    assert [n.pk for n in pendientes] == por_copy and len(por_orm) == len(por_copy) == 8
    # Mail rows carry a Message-ID of ours from the start; chat rows none.
    assert all(bool(n.message_id) == (n.canal == "correo") for n in pendientes)
    assert pendientes[0].datos == eventos[0]["datos"]


@pytest.mark.django_db
def test_it_skips_a_key_already_recorded_and_writes_the_rest(synology, ticket):
    datos = {"objetivo": "resolucion"}
    ya = notificar(evento=Evento.SLA_AVISO, ticket=ticket, datos=datos, unico="a")
    escritas = notificar_lote(
        [
            {"evento": Evento.SLA_AVISO, "ticket": ticket, "datos": datos, "unico": "a"},
            {"evento": Evento.SLA_AVISO, "ticket": ticket, "datos": datos, "unico": "b"},
        ]
    )
    assert Notificacion.objects.filter(unico="a").get().pk == ya[0].pk
    assert escritas == [Notificacion.objects.get(unico="b").pk]


@pytest.mark.django_db
def test_it_writes_a_batch_in_the_same_statements_whatever_its_size(
    correo_de_prueba, ticket, monkeypatch
):
    if connection.vendor == "sqlite":  # as in test_sla: the SQLite we run takes 32,766
        monkeypatch.setattr(connection.features, "max_query_params", 32766)

    def lote(n):
        Notificacion.objects.all().delete()
        eventos = [
            {"evento": Evento.SLA_INCUMPLIDO, "ticket": ticket, "unico": f"x{i}"} for i in range(n)
        ]
        with CaptureQueriesContext(connection) as consultas:
            assert len(notificar_lote(eventos)) == 2 * n
        return [q["sql"].split()[0] for q in consultas]

    lote(1)
    assert lote(3) == lote(300)


@pytest.mark.django_db
def test_it_keeps_an_index_for_each_query_of_the_outbox(postgres, synology, ticket, asignado):
    """What the partial indexes leave out is never asked for: each query can use its index
    (sequential scans off, as on a table too big for them)."""
    consultas = {
        "notificacion_cola": Notificacion.objects.filter(
            estado="pendiente", proximo_intento__lte=AHORA
        ),
        "notificacion_acuse": Notificacion.objects.filter(
            evento=Evento.ACUSE, correo__in=["a@example.org"], creado__gte=AHORA
        ),
        "notificacion_message_id": Notificacion.objects.filter(
            message_id__in=[f"m{i}@example.com" for i in range(500)]
        ).exclude(message_id=""),  # as tickets_de_message_ids asks, for lists of any size
        "notificacion_unico": Notificacion.objects.filter(unico="sla_aviso:1:resolucion"),
        "notificacion_usuario": Notificacion.objects.filter(usuario__in=[asignado]),
        "notificacion_departamento": Notificacion.objects.filter(departamento_id=1),
        "notificacion_detalle": Notificacion.objects.filter(detalle_id__in=[1, 2]),
        "ticket_id": Notificacion.objects.filter(ticket=ticket),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    for indice, consulta in consultas.items():
        plan = consulta.order_by().explain()
        assert indice in plan, f"{indice}:\n{plan}"
