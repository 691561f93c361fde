"""Manage API consumers: crear, listar, rotar, revocar."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sso.consumidores import consumidor_crear, consumidor_revocar, consumidor_rotar
from sso.models import ConsumidorAPI


def _when(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else "-"


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
        crear.add_argument(
            "--ips",
            default="",
            help="Comma-separated IPs or networks (10.0.0.0/8,2001:db8::/32) it may call from; "
            "default: any.",
        )
        sub.add_parser(
            "listar",
            help="List consumers: name, state, permissions, allowed IPs, last use, "
            "previous secret valid until, purpose. Never secrets.",
        )
        rotar = sub.add_parser("rotar", help="Give a consumer a new secret.")
        rotar.add_argument("nombre")
        rotar.add_argument(
            "--solapamiento",
            type=float,
            default=None,
            metavar="HORAS",
            help="Hours the current secret keeps working (0: stops at once); "
            "default: CONSUMIDOR_SOLAPAMIENTO_HORAS.",
        )
        revocar = sub.add_parser("revocar", help="Revoke a consumer (all its secrets).")
        revocar.add_argument("nombre")

    def handle(self, *args, accion, **options):
        getattr(self, f"_{accion}")(**options)

    def _get(self, nombre):
        try:
            return ConsumidorAPI.objects.get(nombre=nombre)
        except ConsumidorAPI.DoesNotExist:
            raise CommandError(f"No consumer named {nombre!r}.") from None

    def _crear(self, *, nombre, permisos, descripcion, ips, **_):
        permisos = [p.strip() for p in permisos.split(",") if p.strip()]
        ips = [ip.strip() for ip in ips.split(",") if ip.strip()]
        if ConsumidorAPI.objects.filter(nombre=nombre).exists():
            raise CommandError(f"A consumer named {nombre!r} already exists.")
        try:
            consumidor, secret = consumidor_crear(
                nombre=nombre, permisos=permisos, descripcion=descripcion, ips_permitidas=ips
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Consumer {consumidor.nombre} created: {', '.join(consumidor.permisos)}")
        if consumidor.ips_permitidas:
            self.stdout.write(f"Allowed from: {', '.join(consumidor.ips_permitidas)}")
        self.stdout.write("Secret (shown only now): " + secret)

    def _listar(self, **_):
        now = timezone.now()
        for c in ConsumidorAPI.objects.all():
            state = "revoked" if c.revocado else ("active" if c.activo else "inactive")
            ips = ",".join(c.ips_permitidas) or "any"
            anterior = c.anterior_vence if c.anterior_vence and c.anterior_vence > now else None
            self.stdout.write(
                "\t".join(
                    [
                        c.nombre,
                        state,
                        ",".join(c.permisos),
                        ips,
                        _when(c.ultimo_uso) if c.ultimo_uso else "never",
                        _when(anterior),
                        c.descripcion,
                    ]
                )
            )

    def _rotar(self, *, nombre, solapamiento, **_):
        consumidor = self._get(nombre)
        try:
            if solapamiento is not None and not 0 <= solapamiento <= 1e6:
                raise ValidationError("The overlap must be a number of hours, 0 or more.")
            secret = consumidor_rotar(
                consumidor=consumidor,
                solapamiento=None if solapamiento is None else timedelta(hours=solapamiento),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if consumidor.anterior_vence:
            self.stdout.write(
                f"The previous secret works until {_when(consumidor.anterior_vence)}."
            )
        else:
            self.stdout.write("The previous secret no longer works.")
        # The contract: the new secret is the last word of the last line.
        self.stdout.write(f"New secret of {nombre} (shown only now): {secret}")

    def _revocar(self, *, nombre, **_):
        consumidor_revocar(consumidor=self._get(nombre))
        self.stdout.write(f"Consumer {nombre} revoked.")
