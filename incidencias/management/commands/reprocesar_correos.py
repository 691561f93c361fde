"""Run failed mail through the pipeline again."""

from django.core.management.base import BaseCommand

from incidencias.ingest import correo_fallido_reprocesar
from incidencias.models import CorreoFallido


class Command(BaseCommand):
    help = "Reprocess failed mail (all pending, or the ids given)."

    def add_arguments(self, parser):
        parser.add_argument(
            "ids", nargs="*", type=int, help="CorreoFallido ids (default: all pending)"
        )

    def handle(self, *args, ids, **options):
        fallidos = CorreoFallido.objects.filter(reprocesado_en__isnull=True).order_by("pk")
        if ids:
            fallidos = fallidos.filter(pk__in=ids)
        errores = 0
        for fallido in fallidos:
            try:
                resultado = correo_fallido_reprocesar(fallido=fallido)
            except Exception as exc:  # reported, and the next one is tried
                errores += 1
                self.stderr.write(f"#{fallido.pk}: {type(exc).__name__}: {exc}")
                continue
            self.stdout.write(f"#{fallido.pk}: {resultado.mensaje}")
        if errores:
            raise SystemExit(1)
