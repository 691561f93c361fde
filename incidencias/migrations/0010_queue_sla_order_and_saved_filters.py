"""The queue's SLA order as a stored generated column, its index, and saved queue filters.

`Ticket.orden_sla` is computed by the database on every write (no code path can forget it): the
due date of the pending target, a far-future constant when none is. Never NULL, so a keyset
cursor on (orden_sla, id) is one row comparison that an index range answers. On PostgreSQL the
column is added with a rewrite of the table (a lock for the time of the rewrite).

Indexes: `ticket_dep_orden_sla` (departamento_id, orden_sla, id) serves a department's queue in
SLA order and the dashboard's overdue count; `ticket_resuelto_en` (only solved tickets) serves
the dashboard's "solved today". Both are maintained on writes that change their columns only.
"""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidencias", "0009_leaner_indexes"),
        ("sso", "0007_oauth_clientes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FiltroGuardado",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("nombre", models.CharField(max_length=80, verbose_name="name")),
                (
                    "consulta",
                    models.CharField(
                        blank=True, max_length=2000, verbose_name="filters (query string)"
                    ),
                ),
                (
                    "orden",
                    models.CharField(
                        choices=[
                            ("sla", "SLA due date"),
                            ("-creado", "newest first"),
                            ("creado", "oldest first"),
                            ("prioridad", "priority"),
                            ("-actualizado", "recently updated"),
                        ],
                        default="sla",
                        max_length=15,
                        verbose_name="order",
                    ),
                ),
                ("creado", models.DateTimeField(auto_now_add=True, verbose_name="created")),
            ],
            options={
                "verbose_name": "saved filter",
                "verbose_name_plural": "saved filters",
                "ordering": ["nombre"],
            },
        ),
        migrations.AddField(
            model_name="ticket",
            name="orden_sla",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.comparison.Coalesce(
                    models.Case(
                        models.When(estado__in=["resuelto", "cerrado"], then=models.Value(None)),
                        models.When(
                            primera_respuesta_en__isnull=True,
                            then=models.F("vence_primera_respuesta"),
                        ),
                        default=models.F("vence_resolucion"),
                        output_field=models.DateTimeField(),
                    ),
                    models.Value("9999-12-31 00:00:00"),
                    output_field=models.DateTimeField(),
                ),
                output_field=models.DateTimeField(),
                verbose_name="SLA due (queue order)",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                fields=["departamento", "orden_sla", "id"], name="ticket_dep_orden_sla"
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("resuelto_en__isnull", False)),
                fields=["resuelto_en"],
                name="ticket_resuelto_en",
            ),
        ),
        migrations.AddField(
            model_name="filtroguardado",
            name="usuario",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="filtros_guardados",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AddConstraint(
            model_name="filtroguardado",
            constraint=models.UniqueConstraint(
                fields=("usuario", "nombre"), name="filtro_guardado_unico"
            ),
        ),
    ]
