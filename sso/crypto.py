"""AES-256-GCM encryption of secrets at rest, with key ids so keys rotate.

A stored value reads `v1:<key id>:<base64(nonce | ciphertext | tag)>`. The caller binds the
value to where it lives (model and column) as associated data, so a ciphertext copied into
another column does not decrypt. Anything wrong (tampering, an unknown key id, a value bound
elsewhere) raises `DecryptionError`: the vault fails closed.
"""

import base64
import hashlib
import os
import threading
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.views.decorators.debug import sensitive_variables

VERSION = "v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored secret could not be decrypted: tampered, bound elsewhere or unknown key."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes] = field(repr=False)
    active: str


_lock = threading.Lock()
_keyring: Keyring | None = None


@sensitive_variables("spec", "keys", "key", "encoded", "item")
def parse_keys(spec: str, active: str = "") -> Keyring:
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id or ":" in key_id:
            raise ImproperlyConfigured("ENCRYPTION_KEYS: each entry is 'id:base64key'.")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or a non-ASCII character
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS: key {key_id!r} is not base64.") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS: key {key_id!r} is not 32 bytes.")
        if key_id in keys:
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS: key id {key_id!r} appears twice.")
        keys[key_id] = key
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty.")
    active = active or list(keys)[-1]
    if active not in keys:
        raise ImproperlyConfigured(f"ENCRYPTION_ACTIVE_KEY {active!r} is not in ENCRYPTION_KEYS.")
    return Keyring(keys=keys, active=active)


def keyring() -> Keyring:
    global _keyring
    ring = _keyring
    if ring is None:
        with _lock:
            if _keyring is None:
                spec = settings.ENCRYPTION_KEYS
                if not spec:
                    if not settings.DEBUG:
                        raise ImproperlyConfigured("ENCRYPTION_KEYS must be set.")
                    # Development only: a key derived from SECRET_KEY.
                    derived = hashlib.sha256(b"encryption:" + settings.SECRET_KEY.encode())
                    spec = "dev:" + base64.b64encode(derived.digest()).decode()
                _keyring = parse_keys(spec, settings.ENCRYPTION_ACTIVE_KEY)
            ring = _keyring
    return ring


def _reset_keyring(*, setting, **kwargs):
    global _keyring
    if setting in ("ENCRYPTION_KEYS", "ENCRYPTION_ACTIVE_KEY", "SECRET_KEY", "DEBUG"):
        _keyring = None


setting_changed.connect(_reset_keyring)


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@sensitive_variables("plaintext", "ring", "sealed")
def encrypt(plaintext: str, associated_data: str) -> str:
    ring = keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.keys[ring.active]).encrypt(
        nonce, plaintext.encode("utf-8"), associated_data.encode("utf-8")
    )
    return f"{VERSION}:{ring.active}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(token: str) -> str | None:
    """The key id a stored value was written with, or None if it is not one of ours."""
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        return None
    return parts[1]


@sensitive_variables("key", "raw", "plain")
def decrypt(token: str, associated_data: str) -> str:
    parts = token.split(":", 2) if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptionError("not an encrypted value")
    _, key_id, encoded = parts
    key = keyring().keys.get(key_id)
    if key is None:
        raise DecryptionError(f"unknown key id {key_id!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
        if len(raw) < NONCE_BYTES + 16:
            raise DecryptionError("truncated value")
        plain = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data.encode("utf-8")
        )
        return plain.decode("utf-8")
    except (ValueError, InvalidTag) as exc:  # binascii.Error and UnicodeError are ValueErrors
        raise DecryptionError("value tampered with or bound to another column") from exc
