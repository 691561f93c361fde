"""Print a development `.env` with freshly generated keys (used by `make run`)."""

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sso.crypto import generate_key


def rsa_pem() -> str:
    """A new 2048-bit RSA private key, PEM (PKCS#8) on one line with "\\n" escapes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return pem.strip().replace("\n", "\\n")


if __name__ == "__main__":
    print("# Written by `make run` for local use; see .env.example for every variable.")
    print("DEBUG=1")
    print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
    print(f"ENCRYPTION_KEYS=k1:{generate_key()}")
    print(f"CONSUMIDOR_HMAC_KEY={secrets.token_urlsafe(32)}")
    # Single quotes: honcho (make run) keeps the spaces and turns each \\n into a line break;
    # settings.py does the same for a value read from ENV_FILE or the environment.
    print(f"OIDC_RSA_PRIVATE_KEY='{rsa_pem()}'")
    # Mail the portal sends (acknowledgements, replies) lands in var/correo/, one file each.
    print("EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend")
