"""Tickets opened before the SLA sweep existed have due dates but no next moment for it
(`sla_proximo`), so it would never look at them. Give every open, running ticket its next due
date of an unmet target. They get breach checks from now on; their warnings are not
back-dated (no warning moment was ever computed for them)."""

from django.db import migrations


def proximo(apps, schema_editor):
    Ticket = apps.get_model("incidencias", "Ticket")
    pendientes = Ticket.objects.filter(
        sla_proximo__isnull=True,
        estado__in=["nuevo", "abierto"],
        sla_pausado_en__isnull=True,
    ).only("id", "vence_primera_respuesta", "primera_respuesta_en", "vence_resolucion",
           "resuelto_en")  # fmt: skip
    lote = []
    for ticket in pendientes.iterator(chunk_size=2000):
        momentos = [
            vence
            for vence, cumplido in (
                (ticket.vence_primera_respuesta, ticket.primera_respuesta_en),
                (ticket.vence_resolucion, ticket.resuelto_en),
            )
            if vence is not None and cumplido is None
        ]
        if momentos:
            ticket.sla_proximo = min(momentos)
            lote.append(ticket)
        if len(lote) >= 2000:
            Ticket.objects.bulk_update(lote, ["sla_proximo"])
            lote = []
    if lote:
        Ticket.objects.bulk_update(lote, ["sla_proximo"])


class Migration(migrations.Migration):
    dependencies = [("incidencias", "0006_dedup_key_first")]

    operations = [migrations.RunPython(proximo, migrations.RunPython.noop, elidable=True)]
