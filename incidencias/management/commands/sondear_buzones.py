"""Poll the mailboxes once, in the foreground: the function Celery beat runs."""

from django.core.management.base import BaseCommand, CommandError

from incidencias.imap import sondear_buzones
from incidencias.models import CuentaCorreo


class Command(BaseCommand):
    help = (
        "Poll every active mailbox once, whatever its interval (or only --cuenta), and print "
        "what each poll imported. Exits with an error if any mailbox failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cuenta", type=int, metavar="ID", help="Poll only this mailbox.")

    def handle(self, *args, cuenta, **options):
        if (
            cuenta is not None
            and not CuentaCorreo.objects.filter(
                pk=cuenta, estado=CuentaCorreo.Estado.ACTIVO
            ).exists()
        ):
            raise CommandError(f"No active mailbox with id {cuenta}.")
        resumenes = sondear_buzones(cuenta_id=cuenta, solo_vencidas=False)
        if not resumenes:
            self.stdout.write("No active mailboxes.")
        for resumen in resumenes:
            self.stdout.write(str(resumen))
        fallidas = [r for r in resumenes if r.error]
        if fallidas:
            raise CommandError(f"{len(fallidas)} of {len(resumenes)} mailboxes failed.")
