"""Fewer index entries per written row of the two tables the SLA sweep writes.

Every row inserted, and every row version an UPDATE writes outside a HOT update, adds an entry
to each index of its table. The sweep writes two notification rows and one ticket version per
due ticket; the mail pipeline writes both too. What each index is for, and what changes:

incidencias_notificacion
- kept: the primary key; `ticket_id` (the ticket's rows, cascades); `notificacion_cola`
  (estado, proximo_intento: the delivery queue and its sweeper); `creado` (the admin's order).
- `unico`: unique only where set (most rows have no key), and no `varchar_pattern_ops` twin:
  keys are only compared whole. A duplicate key still raises IntegrityError, as before.
- `message_id`: only rows with one (the mail rows; chat rows have none), no pattern twin. The
  threading lookup (`tickets_de_message_ids`) asks for non-empty ids only.
- `departamento_id`, `detalle_id`, `usuario_id`: only rows that have one (a row goes to a
  department, a person or an address). Cascades and lookups compare with `=`/`IN`, which
  imply IS NOT NULL, so the partial indexes serve them.
- `notificacion_acuse`: only acknowledgement rows, on (correo, creado): the acknowledgement
  window is its one query, always with `evento = 'acuse'`.

incidencias_ticket
- `departamento_id` and `asignado_id` alone: dropped, `ticket_dep_estado` and
  `ticket_asignado_estado` lead with them (lookups and SET NULL/PROTECT checks use those).
- `estado`: kept, without its `varchar_pattern_ops` twin (states are never matched by prefix).
- `relacionado_id`: only tickets that follow up on another.

Django drops and re-adds the foreign keys whose index changes (validated again, in this
transaction); the rest is DROP INDEX / CREATE INDEX.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidencias", "0008_search_triggers_on_changed_text"),
        ("sso", "0004_consumidor_ip_solapamiento_uso"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="notificacion",
            name="notificacion_acuse",
        ),
        migrations.AlterField(
            model_name="notificacion",
            name="departamento",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="sso.departamento",
                verbose_name="department",
            ),
        ),
        migrations.AlterField(
            model_name="notificacion",
            name="detalle",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="notificaciones",
                to="incidencias.detalleticket",
                verbose_name="entry",
            ),
        ),
        migrations.AlterField(
            model_name="notificacion",
            name="message_id",
            field=models.CharField(blank=True, max_length=255, verbose_name="Message-ID"),
        ),
        migrations.AlterField(
            model_name="notificacion",
            name="unico",
            field=models.CharField(
                blank=True, editable=False, max_length=255, null=True, verbose_name="once-only key"
            ),
        ),
        migrations.AlterField(
            model_name="notificacion",
            name="usuario",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="notificaciones",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AlterField(
            model_name="ticket",
            name="asignado",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="tickets_asignados",
                to=settings.AUTH_USER_MODEL,
                verbose_name="assignee",
            ),
        ),
        migrations.AlterField(
            model_name="ticket",
            name="departamento",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="tickets",
                to="sso.departamento",
                verbose_name="department",
            ),
        ),
        migrations.AlterField(
            model_name="ticket",
            name="estado",
            field=models.CharField(
                choices=[
                    ("nuevo", "new"),
                    ("abierto", "open"),
                    ("en_espera", "waiting on customer"),
                    ("resuelto", "solved"),
                    ("cerrado", "closed"),
                ],
                default="nuevo",
                max_length=10,
                verbose_name="state",
            ),
        ),
        migrations.AlterField(
            model_name="ticket",
            name="relacionado",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="incidencias.ticket",
                verbose_name="follows up on",
            ),
        ),
        migrations.AddIndex(
            model_name="notificacion",
            index=models.Index(
                condition=models.Q(("evento", "acuse")),
                fields=["correo", "creado"],
                name="notificacion_acuse",
            ),
        ),
        migrations.AddIndex(
            model_name="notificacion",
            index=models.Index(
                condition=models.Q(("message_id", ""), _negated=True),
                fields=["message_id"],
                name="notificacion_message_id",
            ),
        ),
        migrations.AddIndex(
            model_name="notificacion",
            index=models.Index(
                condition=models.Q(("departamento__isnull", False)),
                fields=["departamento"],
                name="notificacion_departamento",
            ),
        ),
        migrations.AddIndex(
            model_name="notificacion",
            index=models.Index(
                condition=models.Q(("detalle__isnull", False)),
                fields=["detalle"],
                name="notificacion_detalle",
            ),
        ),
        migrations.AddIndex(
            model_name="notificacion",
            index=models.Index(
                condition=models.Q(("usuario__isnull", False)),
                fields=["usuario"],
                name="notificacion_usuario",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["estado"], name="ticket_estado"),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("relacionado__isnull", False)),
                fields=["relacionado"],
                name="ticket_relacionado",
            ),
        ),
        migrations.AddConstraint(
            model_name="notificacion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("unico__isnull", False)),
                fields=("unico",),
                name="notificacion_unico",
            ),
        ),
    ]
