"""Print a development `.env` with freshly generated keys (used by `make run`)."""

import secrets

from sso.crypto import generate_key

if __name__ == "__main__":
    print("# Written by `make run` for local use; see .env.example for every variable.")
    print("DEBUG=1")
    print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
    print(f"ENCRYPTION_KEYS=k1:{generate_key()}")
    print(f"CONSUMIDOR_HMAC_KEY={secrets.token_urlsafe(32)}")
