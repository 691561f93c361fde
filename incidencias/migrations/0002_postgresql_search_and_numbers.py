"""PostgreSQL only: the ticket-number sequence, and full-text search kept by triggers.

On SQLite the numbers come from MAX + 1 under its single writer and search is a plain
substring match, so these operations do nothing there.
"""

from django.db import migrations

FORWARD = r"""
CREATE SEQUENCE IF NOT EXISTS incidencias_ticket_numero_seq START 1;
SELECT setval('incidencias_ticket_numero_seq',
              GREATEST((SELECT COALESCE(MAX(numero), 0) FROM incidencias_ticket), 1),
              (SELECT COUNT(*) > 0 FROM incidencias_ticket));

CREATE OR REPLACE FUNCTION incidencias_detalle_busqueda() RETURNS trigger AS $$
BEGIN
  NEW.busqueda :=
    setweight(to_tsvector('pg_catalog.spanish', coalesce(NEW.asunto, '')), 'A') ||
    setweight(to_tsvector('pg_catalog.spanish', left(coalesce(NEW.texto, ''), 100000)), 'B');
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER incidencias_detalle_busqueda
  BEFORE INSERT OR UPDATE OF asunto, texto, busqueda ON incidencias_detalleticket
  FOR EACH ROW EXECUTE FUNCTION incidencias_detalle_busqueda();

CREATE OR REPLACE FUNCTION incidencias_ticket_busqueda() RETURNS trigger AS $$
BEGIN
  NEW.busqueda :=
    setweight(to_tsvector('pg_catalog.spanish', coalesce(NEW.asunto, '')), 'A') ||
    setweight(to_tsvector('pg_catalog.simple',
              coalesce(NEW.solicitante_nombre, '') || ' ' ||
              coalesce(NEW.solicitante_email, '')), 'B');
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER incidencias_ticket_busqueda
  BEFORE INSERT OR UPDATE OF asunto, solicitante_nombre, solicitante_email, busqueda
  ON incidencias_ticket
  FOR EACH ROW EXECUTE FUNCTION incidencias_ticket_busqueda();

CREATE INDEX IF NOT EXISTS incidencias_detalle_busqueda_gin
  ON incidencias_detalleticket USING gin (busqueda);
CREATE INDEX IF NOT EXISTS incidencias_ticket_busqueda_gin
  ON incidencias_ticket USING gin (busqueda);
"""

BACKWARD = r"""
DROP INDEX IF EXISTS incidencias_ticket_busqueda_gin;
DROP INDEX IF EXISTS incidencias_detalle_busqueda_gin;
DROP TRIGGER IF EXISTS incidencias_ticket_busqueda ON incidencias_ticket;
DROP FUNCTION IF EXISTS incidencias_ticket_busqueda();
DROP TRIGGER IF EXISTS incidencias_detalle_busqueda ON incidencias_detalleticket;
DROP FUNCTION IF EXISTS incidencias_detalle_busqueda();
DROP SEQUENCE IF EXISTS incidencias_ticket_numero_seq;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("incidencias", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
