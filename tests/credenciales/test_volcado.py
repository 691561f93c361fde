"""A copy of the database gives nothing without the key: `pg_dump` of the whole database holds
neither a credential's secret, nor an earlier one, nor a mailbox password, in any form."""

import shutil
import subprocess

import pytest
from django.db import connection

from credenciales import services
from credenciales.models import TipoCredencial
from incidencias.models import CuentaCorreo
from sso.models import Departamento

SECRETOS = ("Clave-Del-Volcado-1", "Clave-Anterior-Del-Volcado-2", "Buzon-Del-Volcado-3")


@pytest.mark.django_db(transaction=True)
def test_it_leaves_no_secret_in_a_pg_dump():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("needs pg_dump (postgresql-client)")
    soporte = Departamento.objects.create(nombre="Soporte")
    tipo = TipoCredencial.objects.create(nombre="Servidor")
    credencial = services.credencial_crear(
        tipo=tipo, departamento=soporte, unidad=None, usuario="root", clave=SECRETOS[1]
    )
    services.credencial_editar(credencial=credencial, clave=SECRETOS[0])
    CuentaCorreo.objects.create(
        host="127.0.0.1", user="soporte@example.com", password=SECRETOS[2], departamento=soporte
    )
    ajustes = connection.settings_dict
    volcado = subprocess.run(
        [
            pg_dump,
            "--data-only",
            "--no-owner",
            "-h",
            ajustes["HOST"] or "127.0.0.1",
            "-p",
            str(ajustes["PORT"] or 5432),
            "-U",
            ajustes["USER"] or "postgres",
            ajustes["NAME"],
        ],
        capture_output=True,
        check=True,
        env={"PGPASSWORD": ajustes["PASSWORD"] or ""},
        timeout=120,
    ).stdout
    # The rows are there (the dump is of the right database), under their key id.
    assert b"soporte@example.com" in volcado
    assert volcado.count(b"v1:") >= 3
    for secreto in SECRETOS:
        assert secreto.encode() not in volcado
        assert secreto.encode().hex().encode() not in volcado
