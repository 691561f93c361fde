"""Manage API consumers: crear, listar, rotar, revocar."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sso.consumidores import consumidor_crear, consumidor_revocar, consumidor_rotar
from sso.models import ConsumidorAPI


class Command(BaseCommand):
    help = "Create, list, rotate and revoke API consumers (X-User-Consumo / X-User-Secret)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="accion", required=True)
        crear = sub.add_parser("crear", help="Create a consumer and print its secret once.")
        crear.add_argument("nombre")
        crear.add_argument(
            "--permisos",
            default="",
            help="Comma-separated: " + ", ".join(ConsumidorAPI.Permiso.values),
        )
        crear.add_argument("--descripcion", default="")
        sub.add_parser("listar", help="List consumers.")
        rotar = sub.add_parser("rotar", help="Give a consumer a new secret.")
        rotar.add_argument("nombre")
        revocar = sub.add_parser("revocar", help="Revoke a consumer.")
        revocar.add_argument("nombre")

    def handle(self, *args, accion, **options):
        getattr(self, f"_{accion}")(**options)

    def _get(self, nombre):
        try:
            return ConsumidorAPI.objects.get(nombre=nombre)
        except ConsumidorAPI.DoesNotExist:
            raise CommandError(f"No consumer named {nombre!r}.") from None

    def _crear(self, *, nombre, permisos, descripcion, **_):
        permisos = [p.strip() for p in permisos.split(",") if p.strip()]
        if ConsumidorAPI.objects.filter(nombre=nombre).exists():
            raise CommandError(f"A consumer named {nombre!r} already exists.")
        try:
            consumidor, secret = consumidor_crear(
                nombre=nombre, permisos=permisos, descripcion=descripcion
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Consumer {consumidor.nombre} created: {', '.join(consumidor.permisos)}")
        self.stdout.write("Secret (shown only now): " + secret)

    def _listar(self, **_):
        for c in ConsumidorAPI.objects.all():
            state = "revoked" if c.revocado else ("active" if c.activo else "inactive")
            self.stdout.write(f"{c.nombre}\t{state}\t{','.join(c.permisos)}\t{c.descripcion}")

    def _rotar(self, *, nombre, **_):
        try:
            secret = consumidor_rotar(consumidor=self._get(nombre))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"New secret of {nombre} (shown only now): {secret}")

    def _revocar(self, *, nombre, **_):
        consumidor_revocar(consumidor=self._get(nombre))
        self.stdout.write(f"Consumer {nombre} revoked.")
