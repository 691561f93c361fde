"""incidencias.db: the prepared cursor and the hand-written row reader of the hot paths."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidencias.db import cursor_preparado, filas
from sso.models import Sistema, TokenUsuario


def prepared_statements(like: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [like]
        )
        return cursor.fetchone()[0]


def test_it_prepares_repeated_statements_on_postgresql(postgres):
    for number in range(6):
        with cursor_preparado() as cursor:
            cursor.execute("SELECT %s::integer + 41 AS preparada", [number])
            assert cursor.fetchone()[0] == number + 41

    assert prepared_statements("%+ 41 AS preparada%") == 1


def test_django_cursors_still_bind_on_the_client(postgres):
    for _ in range(6):
        list(Sistema.objects.filter(alias="never-prepared"))

    assert prepared_statements("%never-prepared%") == 0
    assert prepared_statements('%"sso_sistema"."alias"%') == 0


def test_it_logs_its_statements_with_their_parameters(db):
    with CaptureQueriesContext(connection) as queries, cursor_preparado() as cursor:
        cursor.execute("SELECT %s AS etiqueta", ["marca-71"])
        assert cursor.fetchone()[0] == "marca-71"

    assert len(queries) == 1
    assert "marca-71" in queries[0]["sql"]


def test_it_builds_the_instances_the_orm_builds(db, agente):
    sistema = Sistema.objects.create(alias="dolores", nombre="Dolores")
    token = TokenUsuario.objects.create(
        usuario=agente,
        secreto_hash="a" * 64,
        sistema=sistema,
        ip="192.0.2.7",
        expira=timezone.now() + timedelta(hours=1),
    )
    sin_sistema = TokenUsuario.objects.create(
        usuario=agente, secreto_hash="b" * 64, expira=timezone.now() + timedelta(hours=1)
    )
    lector = filas(connection, ("t", TokenUsuario), ("s", Sistema))
    sql = (
        f"SELECT {lector.columnas} FROM sso_tokenusuario t "  # noqa: S608 - a test's fixed SQL
        "LEFT JOIN sso_sistema s ON s.id = t.sistema_id WHERE t.id IN (%s, %s) ORDER BY t.id"
    )
    with cursor_preparado() as cursor:
        cursor.execute(sql, [token.pk, sin_sistema.pk])
        rows = cursor.fetchall()

    (leido, su_sistema), (leido_sin, ninguno) = (lector.instancias(connection, r) for r in rows)
    orm = TokenUsuario.objects.get(pk=token.pk)
    for field in TokenUsuario._meta.concrete_fields:
        assert getattr(leido, field.attname) == getattr(orm, field.attname), field.name
    assert leido.expira.tzinfo is not None
    assert leido._state.adding is False
    assert su_sistema == sistema and su_sistema.alias == "dolores" and su_sistema.activo is True
    assert leido_sin.pk == sin_sistema.pk and ninguno is None


def test_it_builds_a_statement_once_per_database_vendor(db):
    from incidencias.db import sentencia

    llamadas = []

    def nombres(q):
        llamadas.append(q)
        return {"tabla": q("sso_sistema")}

    plantilla = "SELECT count(*) FROM {tabla} WHERE 1 = %s"
    primera = sentencia(connection, plantilla, nombres)
    assert sentencia(connection, plantilla, nombres) is primera
    assert len(llamadas) == 1 and primera == plantilla.format(
        tabla=connection.ops.quote_name("sso_sistema")
    )
