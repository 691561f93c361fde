"""Copy records, the audit log as CSV, and the per-user report."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credenciales import services
from credenciales.models import AccesoCredencial, Credencial
from credenciales.selectors import informe_usuario

from .conftest import EDICION, LECTURA, REVELAR, SECRETO

AUDITORIA = [*EDICION, "view_accesocredencial"]


@pytest.fixture
def auditora(hacer_usuario, dev, ops):
    """The department's head: sees every unit of Soporte and its audit log."""
    return hacer_usuario("auditora", AUDITORIA, jefe=True)


@pytest.fixture
def de_ops(tipo, soporte, ops):
    return services.credencial_crear(
        tipo=tipo, departamento=soporte, unidad=ops, usuario="ops@example.com", clave="Ops-1"
    )


@pytest.fixture
def de_redes(tipo, redes):
    return services.credencial_crear(
        tipo=tipo, departamento=redes, unidad=None, usuario="=HYPERLINK(1)", clave="Redes-1"
    )


def _filas(lineas) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lineas))))


def test_it_records_a_copy(usuarios, credencial):
    acceso = services.credencial_registrar_copia(
        credencial=credencial, usuario=usuarios["revelador"], ip="192.0.2.9"
    )
    acceso.refresh_from_db()
    assert (acceso.accion, acceso.usuario, acceso.credencial, acceso.ip) == (
        "copiar",
        usuarios["revelador"],
        credencial,
        "192.0.2.9",
    )


def test_it_exports_the_audit_log_without_secrets_and_records_it(auditora, usuarios, credencial):
    services.credencial_revelar(
        credencial=credencial, usuario=usuarios["revelador"], motivo="=cmd|' /C calc'!A0"
    )
    lineas = services.accesos_exportar_csv(usuario=auditora, credencial=credencial)
    # The export is on record before a single line is read.
    exportar = AccesoCredencial.objects.get(accion="exportar")
    assert (exportar.usuario, exportar.credencial) == (auditora, credencial)
    filas = _filas(lineas)
    assert filas[0] == list(services.COLUMNAS_CSV)
    assert [f[2] for f in filas[1:]] == ["crear", "revelar", "exportar"]
    revelar = filas[2]
    assert revelar[1] == "revelador"
    assert revelar[6] == "'=cmd|' /C calc'!A0"  # a formula turned into text
    texto = "".join(services.accesos_exportar_csv(usuario=auditora, credencial=credencial))
    assert SECRETO not in texto


@pytest.mark.parametrize("valor", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_it_quotes_every_formula_start(valor):
    assert services.celda_segura(valor) == "'" + valor
    assert services.celda_segura("a" + valor) == "a" + valor


def test_it_scopes_the_full_export_to_what_the_reader_sees(
    hacer_usuario, auditora, usuarios, credencial, de_ops, de_redes, redes
):
    de_redes_lector = hacer_usuario(
        "auditor-redes", [*LECTURA, "view_accesocredencial"], departamento=redes
    )
    ids = {f[3] for f in _filas(services.accesos_exportar_csv(usuario=auditora))[1:]}
    assert ids == {str(credencial.pk), str(de_ops.pk)}
    filas = _filas(services.accesos_exportar_csv(usuario=de_redes_lector))[1:]
    assert {f[3] for f in filas} == {str(de_redes.pk)}
    assert filas[0][4] == f"{de_redes.pk} {redes.pk}/None =HYPERLINK(1)"


def test_it_filters_the_export_by_dates(auditora, usuarios, credencial):
    ayer = timezone.now() - timedelta(days=1)
    viejo = services.credencial_registrar_copia(credencial=credencial, usuario=auditora)
    AccesoCredencial.objects.filter(pk=viejo.pk).update(momento=ayer - timedelta(days=3))
    hoy = timezone.localdate()
    filas = _filas(services.accesos_exportar_csv(usuario=auditora, desde=hoy, hasta=hoy))[1:]
    assert "copiar" not in [f[2] for f in filas]
    filas = _filas(services.accesos_exportar_csv(usuario=auditora, hasta=hoy - timedelta(days=2)))[
        1:
    ]
    assert [f[2] for f in filas] == ["copiar"]
    with pytest.raises(TypeError):
        services.accesos_exportar_csv(usuario=auditora, desde="2025-01-01")


def test_it_refuses_the_export_without_permission_or_outside_the_scope(
    usuarios, credencial, de_redes, auditora
):
    with pytest.raises(PermissionDenied):
        services.accesos_exportar_csv(usuario=usuarios["editor"])
    with pytest.raises(Credencial.DoesNotExist):
        services.accesos_exportar_csv(usuario=auditora, credencial=de_redes)
    assert not AccesoCredencial.objects.filter(accion="exportar").exists()


def test_it_reports_what_a_person_revealed_and_could_reveal(
    auditora, usuarios, credencial, de_ops, de_redes
):
    revelador = usuarios["revelador"]  # unit dev of Soporte
    for _ in range(3):
        services.credencial_revelar(credencial=credencial, usuario=revelador)
    services.credencial_registrar_copia(credencial=credencial, usuario=revelador)
    # Revealed once from another unit before a move: still to rotate.
    services.credencial_revelar(credencial=de_ops, usuario=revelador)
    # A reveal in another department: outside the head's report.
    services.credencial_revelar(credencial=de_redes, usuario=revelador)

    informe = informe_usuario(usuario_objetivo=revelador, por=auditora)
    assert [(r.credencial, r.veces) for r in informe.reveladas] == [(de_ops, 1), (credencial, 4)]
    assert informe.reveladas[1].ultima <= timezone.now()
    assert informe.puede_revelar == [credencial]
    assert informe.rotar == [credencial, de_ops]
    # The secret is never loaded into the report.
    assert all("clave" in c.get_deferred_fields() for c in informe.rotar)


def test_it_reports_nothing_revealable_for_a_reader_or_an_inactive_person(
    auditora, usuarios, credencial
):
    assert informe_usuario(usuario_objetivo=usuarios["lector"], por=auditora).puede_revelar == []
    revelador = usuarios["revelador"]
    revelador.is_active = False
    revelador.save()
    assert informe_usuario(usuario_objetivo=revelador, por=auditora).puede_revelar == []


def test_it_scopes_the_report_to_the_reader(hacer_usuario, usuarios, credencial, de_ops, ops):
    # A reader of unit ops only sees the ops credential in someone's report.
    de_ops_auditor = hacer_usuario(
        "auditor-ops", [*REVELAR, "view_accesocredencial"], unidades=[ops]
    )
    services.credencial_revelar(credencial=credencial, usuario=usuarios["editor"])
    informe = informe_usuario(usuario_objetivo=usuarios["editor"], por=de_ops_auditor)
    assert informe.reveladas == []
    assert informe.puede_revelar == []
    with pytest.raises(PermissionDenied):
        informe_usuario(usuario_objetivo=usuarios["editor"], por=usuarios["revelador"])


def test_it_builds_the_report_in_a_constant_number_of_queries(
    auditora, usuarios, tipo, soporte, dev
):
    revelador = usuarios["revelador"]

    def medir():
        objetivo = type(revelador).objects.get(pk=revelador.pk)
        por = type(auditora).objects.get(pk=auditora.pk)
        with CaptureQueriesContext(connection) as ctx:
            informe = informe_usuario(usuario_objetivo=objetivo, por=por)
            _ = [c.departamento.nombre for c in informe.rotar]
        return len(ctx.captured_queries)

    def crear(n):
        for i in range(n):
            c = services.credencial_crear(
                tipo=tipo, departamento=soporte, unidad=dev, usuario=f"c{i}@example.com", clave="x"
            )
            services.credencial_revelar(credencial=c, usuario=revelador)

    crear(1)
    una = medir()
    crear(20)
    assert medir() == una
