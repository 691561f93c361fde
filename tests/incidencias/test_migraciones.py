"""Data migrations, run against the test database from the state before them."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ANTES = [("incidencias", "0006_dedup_key_first")]
DESPUES = [("incidencias", "0007_sla_tickets_anteriores")]


def migrar(destino):
    executor = MigrationExecutor(connection)
    executor.migrate(destino)
    return executor.loader.project_state(destino).apps


@pytest.mark.django_db(transaction=True)
def test_it_gives_older_open_tickets_the_sweeps_next_moment():
    apps = migrar(ANTES)
    Ticket = apps.get_model("incidencias", "Ticket")
    primera, resolucion = (
        datetime(2026, 3, 10, 16, tzinfo=UTC),
        datetime(2026, 3, 11, 16, tzinfo=UTC),
    )
    comun = {"vence_primera_respuesta": primera, "vence_resolucion": resolucion}
    Ticket.objects.create(numero=9001, estado="abierto", **comun)
    Ticket.objects.create(numero=9002, estado="nuevo", primera_respuesta_en=primera, **comun)
    Ticket.objects.create(numero=9003, estado="resuelto", **comun)
    Ticket.objects.create(numero=9004, estado="abierto")
    try:
        Ticket = migrar(DESPUES).get_model("incidencias", "Ticket")
        proximos = dict(
            Ticket.objects.filter(numero__gte=9001).values_list("numero", "sla_proximo")
        )
    finally:
        migrar(MigrationExecutor(connection).loader.graph.leaf_nodes())  # back to the latest
    assert proximos == {9001: primera, 9002: resolucion, 9003: None, 9004: None}
