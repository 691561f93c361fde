"""The deduplication index leads with the key: a batch looks up its keys of one source with
`clave_dedup IN (...)`, which then reads only those entries and not every entry of the source
(as the planner did with fresh statistics). Same uniqueness; replaced in one transaction."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidencias", "0005_lz4_entry_bodies"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="detalleticket",
            name="detalle_dedup_unico",
        ),
        migrations.AddConstraint(
            model_name="detalleticket",
            constraint=models.UniqueConstraint(
                condition=models.Q(("clave_dedup", ""), _negated=True),
                fields=("clave_dedup", "fuente"),
                name="detalle_dedup_unico",
            ),
        ),
    ]
