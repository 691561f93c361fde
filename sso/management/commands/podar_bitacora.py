from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sso.bitacora import bitacora_podar


class Command(BaseCommand):
    help = "Delete audit-log rows older than the retention period."

    def add_arguments(self, parser):
        parser.add_argument("--dias", type=int, default=settings.BITACORA_RETENTION_DAYS)

    def handle(self, *args, dias, **options):
        if dias < 1:
            raise CommandError("--dias must be at least 1: the audit log keeps at least a day.")
        deleted = bitacora_podar(dias=dias)
        self.stdout.write(f"Deleted {deleted} audit rows older than {dias} days.")
