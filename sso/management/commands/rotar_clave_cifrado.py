from django.core.management.base import BaseCommand, CommandError

from sso import crypto
from sso.fields import reencrypt_all


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest (active) encryption key."

    def handle(self, *args, **options):
        try:
            counts = reencrypt_all()
        except crypto.DecryptionError as exc:
            raise CommandError(f"A stored secret does not decrypt: {exc}") from exc
        active = crypto.keyring().active
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} re-encrypted")
        self.stdout.write(f"All secrets are under key {active!r}.")
