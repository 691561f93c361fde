"""`rotar_clave_cifrado` while secrets are being read: no read fails, none sees a wrong value."""

import threading

import pytest
from django.db import connection
from django.test import override_settings

from credenciales import services
from credenciales.models import Credencial, HistorialClave
from incidencias.models import CuentaCorreo
from sso import crypto
from sso.fields import encrypted_fields, reencrypt_all

pytestmark = pytest.mark.django_db(transaction=True)


def _claves_guardadas() -> dict[str, set[str | None]]:
    """The key id of every stored secret, per model and column, read past the ORM."""
    ids = {}
    for model, field in encrypted_fields():
        tabla = connection.ops.quote_name(model._meta.db_table)
        columna = connection.ops.quote_name(field.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columna} FROM {tabla} WHERE {columna} IS NOT NULL")  # noqa: S608
            ids[f"{model._meta.label}.{field.name}"] = {
                crypto.key_id_of(v) for (v,) in cursor.fetchall()
            }
    return ids


class Lector(threading.Thread):
    """Reveals every credential and reads every mailbox password, round after round, until
    told to stop; records every failure and wrong value."""

    def __init__(self, credenciales: dict[int, str], buzones: dict[int, str], usuario):
        super().__init__(daemon=True)
        self.credenciales, self.buzones, self.usuario = credenciales, buzones, usuario
        self.alto = threading.Event()
        self.lecturas = 0
        self.errores: list[str] = []
        self.cambio = threading.Condition()

    def leer_una_vez(self):
        for pk, clara in self.credenciales.items():
            credencial = Credencial.objects.get(pk=pk)
            leida = services.credencial_revelar(credencial=credencial, usuario=self.usuario)
            if leida != clara:
                self.errores.append(f"credential {pk}: a wrong value")
            self._contar()
        for pk, clara in self.buzones.items():
            if CuentaCorreo.objects.get(pk=pk).password != clara:
                self.errores.append(f"mailbox {pk}: a wrong value")
            self._contar()

    def _contar(self):
        with self.cambio:
            self.lecturas += 1
            self.cambio.notify_all()

    def esperar_lecturas(self, cuantas: int):
        """Block until the reader has done `cuantas` more reads (or failed)."""
        with self.cambio:
            meta = self.lecturas + cuantas
            ok = self.cambio.wait_for(
                lambda: self.lecturas >= meta or self.errores or not self.is_alive(), timeout=60
            )
        assert ok, "the reader stopped reading"

    def run(self):
        try:
            while not self.alto.is_set():
                self.leer_una_vez()
        except Exception as exc:  # recorded, and the test fails on it
            self.errores.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()


def test_it_rotates_the_vault_and_the_mailboxes_under_a_running_read(
    postgres, tipo, soporte, dev, hacer_usuario
):
    from .conftest import REVELAR

    viejo, nuevo = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"k1:{viejo}"):
        credenciales = {}
        for i in range(24):
            c = services.credencial_crear(
                tipo=tipo,
                departamento=soporte,
                unidad=dev,
                usuario=f"cuenta{i}@example.com",
                clave=f"primera-{i}",
            )
            services.credencial_editar(credencial=c, clave=f"clave-{i}-Ω")  # a history row
            credenciales[c.pk] = f"clave-{i}-Ω"
        buzones = {
            CuentaCorreo.objects.create(
                host="imap.example.com", user=f"buzon{i}", password=f"buzon-{i}"
            ).pk: f"buzon-{i}"
            for i in range(6)
        }
        revelador = hacer_usuario("revelador", REVELAR, unidades=[dev])
        assert _claves_guardadas()["credenciales.Credencial.clave"] == {"k1"}

    # Every process now knows both keys and writes under k2; the old rows still read.
    with override_settings(ENCRYPTION_KEYS=f"k1:{viejo},k2:{nuevo}"):
        lector = Lector(credenciales, buzones, revelador)
        lector.start()
        try:
            lector.esperar_lecturas(1)
            # One row per transaction, and reads in between every batch.
            counts = reencrypt_all(batch_size=1, despues_de_lote=lambda: lector.esperar_lecturas(3))
            lector.esperar_lecturas(len(credenciales) + len(buzones))  # a full round after
        finally:
            lector.alto.set()
            lector.join(timeout=60)
        assert lector.errores == []
        assert counts["credenciales.Credencial.clave"] == 24
        assert counts["credenciales.HistorialClave.clave"] == 24
        assert counts["incidencias.CuentaCorreo.password"] == 6

    guardadas = _claves_guardadas()
    for nombre in (
        "credenciales.Credencial.clave",
        "credenciales.HistorialClave.clave",
        "incidencias.CuentaCorreo.password",
    ):
        assert guardadas[nombre] == {"k2"}, nombre
    # Without the old key, everything still reads, history included.
    with override_settings(ENCRYPTION_KEYS=f"k2:{nuevo}"):
        for pk, clara in credenciales.items():
            assert (
                services.credencial_revelar(
                    credencial=Credencial.objects.get(pk=pk), usuario=revelador
                )
                == clara
            )
            assert HistorialClave.objects.get(credencial_id=pk).clave.startswith("primera-")
        for pk, clara in buzones.items():
            assert CuentaCorreo.objects.get(pk=pk).password == clara
