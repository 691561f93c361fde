"""Load a small demo organisation. Running it twice changes nothing."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from credenciales.demo import demo_credenciales
from incidencias.demo import demo_incidencias, demo_tickets
from sso.demo import demo_cliente_oauth, demo_identidad


class Command(BaseCommand):
    help = (
        "Load the demo organisation (departments, units, agents, a mailbox, SLA policies, "
        "credential types, a few customer tickets) and print its logins."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load it even with DEBUG off (demo users have well-known passwords).",
        )

    def handle(self, *args, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Demo users have well-known passwords: use --force with DEBUG off.")
        with transaction.atomic():
            logins = demo_identidad()
            demo_incidencias()
            demo_credenciales()
            demo_tickets()
            cliente = demo_cliente_oauth() if settings.OAUTH2_ALLOW_HTTP_REDIRECTS else None
        self.stdout.write("Demo logins:")
        for login, password, created in logins:
            note = "" if created else " (already there)"
            self.stdout.write(f"  {login} / {password}{note}")
        if cliente is not None:
            self.stdout.write(
                f"OAuth client {cliente.name!r}: client_id {cliente.client_id}, "
                f"redirect URI {cliente.redirect_uris} (public, PKCE S256)"
            )
