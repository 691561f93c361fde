"""PostgreSQL only: the full-text vectors are recomputed when their text changes, not whenever
an UPDATE names a text column.

`UPDATE OF asunto, ...` (0002) fires whenever the statement's SET list names one of the columns,
changed or not, and a full `save()` names them all: every save of a ticket or an entry ran
`to_tsvector` over its subject and text again and wrote the same vector. The INSERT trigger is
unchanged; the UPDATE trigger now also needs one of the indexed columns to differ from the row
as it was, or the vector to be written or missing (a save that writes `busqueda` back as the
stale NULL of an unrefreshed instance gets it recomputed, as before). The functions are 0002's.
"""

from django.db import migrations

TRIGGERS = {
    # table: (function, indexed columns)
    "incidencias_ticket": (
        "incidencias_ticket_busqueda",
        ("asunto", "solicitante_nombre", "solicitante_email"),
    ),
    "incidencias_detalleticket": ("incidencias_detalle_busqueda", ("asunto", "texto")),
}


def _sql(tabla: str, funcion: str, columnas: tuple[str, ...], *, al_cambiar: bool) -> str:
    nombres = ", ".join((*columnas, "busqueda"))
    if not al_cambiar:  # as 0002 made it
        return f"""
        DROP TRIGGER IF EXISTS {funcion}_alta ON {tabla};
        DROP TRIGGER IF EXISTS {funcion} ON {tabla};
        CREATE TRIGGER {funcion} BEFORE INSERT OR UPDATE OF {nombres} ON {tabla}
          FOR EACH ROW EXECUTE FUNCTION {funcion}();
        """
    cambio = " OR ".join(
        [f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (*columnas, "busqueda")]
        + ["NEW.busqueda IS NULL"]
    )
    return f"""
    DROP TRIGGER IF EXISTS {funcion} ON {tabla};
    CREATE TRIGGER {funcion}_alta BEFORE INSERT ON {tabla}
      FOR EACH ROW EXECUTE FUNCTION {funcion}();
    CREATE TRIGGER {funcion} BEFORE UPDATE OF {nombres} ON {tabla}
      FOR EACH ROW WHEN ({cambio}) EXECUTE FUNCTION {funcion}();
    """


def _aplicar(schema_editor, *, al_cambiar: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for tabla, (funcion, columnas) in TRIGGERS.items():
        schema_editor.execute(_sql(tabla, funcion, columnas, al_cambiar=al_cambiar))


def forward(apps, schema_editor):
    _aplicar(schema_editor, al_cambiar=True)


def backward(apps, schema_editor):
    _aplicar(schema_editor, al_cambiar=False)


class Migration(migrations.Migration):
    dependencies = [("incidencias", "0007_sla_tickets_anteriores")]

    operations = [migrations.RunPython(forward, backward)]
