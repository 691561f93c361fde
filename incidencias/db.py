"""Database helpers shared by the hot paths that write their SQL by hand."""

from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def cursor_preparado(using: str = "default"):
    """A cursor whose statements PostgreSQL prepares once they repeat.

    Django's psycopg cursors bind parameters on the client, so the server parses and plans every
    statement again. A plain psycopg cursor binds on the server, and psycopg prepares a statement
    after it has run `prepare_threshold` times (5 by default) on the connection. For the few
    statements written by hand that run on every API call (the audit row, the user token), that
    saves the server most of its work. Behind a pooler that cannot keep prepared statements
    (PgBouncer in transaction mode before 1.21), set `prepare_threshold` to nothing in the
    database options. Same wrappers as Django's own cursors: errors, query logging and
    execute_wrappers behave as usual. Other databases get Django's cursor.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        cursor = psycopg.Cursor(connection.connection)
    wrapper = _CursorDebugPreparado if connection.queries_logged else CursorWrapper
    return wrapper(cursor, connection)


class _CursorDebugPreparado(CursorDebugWrapper):
    """Logs the statement with its parameters, as Django's own cursors do.

    Django reads the logged SQL back from a client-binding cursor; a server-binding one has
    none to give, so it is composed here (only while queries are being logged).
    """

    def execute(self, sql, params=None):
        try:
            texto = self.db.ops.compose_sql(sql, params)
        except Exception:  # logging must never stop the statement
            texto = sql
        with self.debug_sql(texto, params):
            return CursorWrapper.execute(self, sql, params)


class Filas:
    """Model instances from the rows of a SELECT written by hand, as the ORM would build them.

    `modelos` are (table alias, model) pairs; `columnas` lists every concrete column of each,
    in order, for the SELECT; `instancias(row)` turns a row that starts with them into one
    instance per model (None for a LEFT JOIN that found nothing), with the backend's and the
    fields' converters applied (SQLite hands datetimes back as text, for one). Built once per
    database vendor by `filas()`.
    """

    def __init__(self, connection, modelos):
        self.partes = []
        columnas = []
        for alias, model in modelos:
            fields = model._meta.concrete_fields
            inicio = len(columnas)
            columnas += [f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields]
            convertir = []
            for i, field in enumerate(fields):
                col = field.get_col(alias)
                funcs = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
                if funcs:
                    convertir.append((i, funcs, col))
            self.partes.append((model, [f.attname for f in fields], inicio, len(fields), convertir))
        self.columnas = ", ".join(columnas)
        self.ancho = len(columnas)

    def instancias(self, connection, row) -> list:
        objetos = []
        for model, attnames, inicio, cuantos, convertir in self.partes:
            values = list(row[inicio : inicio + cuantos])
            if values[0] is None:  # a LEFT JOIN that matched nothing (the primary key is null)
                objetos.append(None)
                continue
            for i, funcs, col in convertir:
                for func in funcs:
                    values[i] = func(values[i], col, connection)
            objetos.append(model.from_db(connection.alias, attnames, values))
        return objetos


_filas: dict[tuple, Filas] = {}


def filas(connection, *modelos) -> Filas:
    clave = (connection.vendor, modelos)
    lector = _filas.get(clave)
    if lector is None:
        lector = _filas[clave] = Filas(connection, modelos)
    return lector


_sentencias: dict[tuple[str, str], str] = {}


def sentencia(connection, plantilla: str, nombres) -> str:
    """`plantilla` (SQL with `{name}` placeholders) filled in for the connection's database,
    once per vendor: `nombres(quote_name)` gives the values, quoted tables and columns or
    `Filas.columnas`. Hand-written statements on hot paths build their text here, not per call."""
    clave = (connection.vendor, plantilla)
    sql = _sentencias.get(clave)
    if sql is None:
        sql = _sentencias[clave] = plantilla.format(**nombres(connection.ops.quote_name))
    return sql
