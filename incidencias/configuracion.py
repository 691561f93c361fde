"""Configuration the mail pipeline reads for every message, cached per process.

Mailbox addresses, routing rules and SLA policies change rarely and are read on every mail:
each process keeps what it read for CONFIG_CACHE_SECONDS. A change saved in this process is
seen at once (the cache is dropped on save and delete); other processes see it within that time.
"""

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

_cache: dict[object, tuple[float, object]] = {}
_lock = threading.Lock()


def leer(clave, cargar):
    """The cached value for `clave`, loading it with `cargar()` when missing or stale."""
    ahora = time.monotonic()
    hit = _cache.get(clave)
    if hit is not None and hit[0] > ahora:
        return hit[1]
    valor = cargar()
    with _lock:
        _cache[clave] = (ahora + settings.CONFIG_CACHE_SECONDS, valor)
    return valor


def olvidar(**kwargs) -> None:
    with _lock:
        _cache.clear()


def conectar(*modelos) -> None:
    for modelo in modelos:
        post_save.connect(olvidar, sender=modelo, dispatch_uid=f"config-{modelo.__name__}")
        post_delete.connect(olvidar, sender=modelo, dispatch_uid=f"config-del-{modelo.__name__}")
