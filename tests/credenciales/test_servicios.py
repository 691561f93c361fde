import sys

import pytest
from django.db import DatabaseError
from django.views.debug import ExceptionReporter

from credenciales import services
from credenciales.models import Credencial

from .conftest import SECRETO
from .test_api import _romper_auditoria


def test_it_keeps_the_secret_out_of_error_reports(tipo, soporte, dev):
    _romper_auditoria()
    with pytest.raises(DatabaseError):
        try:
            services.credencial_crear(
                tipo=tipo, departamento=soporte, unidad=dev, usuario="a@example.com", clave=SECRETO
            )
        except DatabaseError:
            report = ExceptionReporter(None, *sys.exc_info()).get_traceback_text()
            raise
    assert "credencial_crear" in report
    assert SECRETO not in report


def test_it_changes_nothing_when_the_audit_row_fails(tipo, soporte, dev, credencial):
    _romper_auditoria()
    with pytest.raises(DatabaseError):
        services.credencial_editar(credencial=credencial, clave="Otra")
    credencial.refresh_from_db()
    assert credencial.clave == SECRETO
    assert not credencial.historial.exists()
    with pytest.raises(DatabaseError):
        services.credencial_borrar(credencial=credencial)
    assert Credencial.objects.filter(pk=credencial.pk).exists()


def test_it_refuses_deleting_a_type_in_use_with_the_count(tipo, credencial):
    with pytest.raises(services.TipoEnUso) as exc:
        services.tipo_borrar(tipo=tipo)
    assert exc.value.cuantas == 1
    assert Credencial.objects.filter(tipo=tipo).count() == 1
