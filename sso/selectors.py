"""Reads of identity data shared by the API, the pages and the admin."""

from django.db.models import Aggregate, OuterRef, QuerySet, Subquery, TextField

from .models import Usuario


class ListaOrdenada(Aggregate):
    """Comma-joined sorted text of a column (STRING_AGG on PostgreSQL, GROUP_CONCAT on SQLite)."""

    function = "STRING_AGG"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        template = "STRING_AGG(%(expressions)s, ',' ORDER BY %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite keeps the order rows arrive in: the subquery below sorts them first.
        template = "GROUP_CONCAT(%(expressions)s, ',')"
        return self.as_sql(compiler, connection, template=template, **extra)


def usuario_interno_list(
    *, login: str | None = None, email: str | None = None, departamento_id: int | None = None
) -> QuerySet[Usuario]:
    """Internal users matching every filter given, with their systems' domains in one query."""
    through = Usuario.accesos_sistemas.through
    dominios = (
        through.objects.filter(usuario_id=OuterRef("pk"))
        .order_by()
        .values("usuario_id")
        .annotate(lista=ListaOrdenada("sistema__dominio"))
        .values("lista")
    )
    users = (
        Usuario.objects.select_related("rol")
        .annotate(dominios_sistemas=Subquery(dominios))
        .order_by("username")
    )
    if login:
        users = users.filter(username=login)
    if email:
        users = users.filter(email__iexact=email)
    if departamento_id is not None:
        users = users.filter(departamento_id=departamento_id)
    return users
