"""Test settings: the project's, plus a small app that exercises the encrypted field."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("ENCRYPTION_KEYS", "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
if not os.environ.get("OIDC_RSA_PRIVATE_KEY") and not os.environ.get("OIDC_RSA_PRIVATE_KEY_FILE"):
    from incidencias.envfile import rsa_pem

    os.environ["OIDC_RSA_PRIVATE_KEY"] = rsa_pem()  # one key per test run

from incidencias.settings import *  # noqa: F403
from incidencias.settings import INSTALLED_APPS, PASSWORD_HASHERS, STATIC_ROOT

INSTALLED_APPS = [*INSTALLED_APPS, "tests.cifrado_app"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Fast hashing in tests; the production hasher has its own test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Each run gets its own cache keys: counters (rate limits) of an earlier run never leak in.
CACHES = {
    name: {**config, "KEY_PREFIX": f"test{os.getpid()}"}
    for name, config in CACHES.items()  # noqa: F405
}

# Without Redis, tasks enqueued by tests that commit go to memory, not to var/celery/.
if not os.environ.get("REDIS_URL"):
    CELERY_BROKER_URL = "memory://"

# Idle sessions write their last activity at most once a minute; a test that counts queries
# must not see that write depend on the clock. The idle tests turn it on themselves.
SESSION_IDLE_MINUTES = 0
