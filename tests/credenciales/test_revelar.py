"""`credencial_revelar_visible` (the API's reveal) follows the selectors' rule exactly."""

import pytest

from credenciales import services
from credenciales.models import AccesoCredencial, Credencial
from credenciales.selectors import credenciales_visibles

from .conftest import REVELAR


def test_it_reveals_exactly_what_the_user_sees(
    usuarios, hacer_usuario, tipo, soporte, redes, dev, ops
):
    credenciales = [
        services.credencial_crear(
            tipo=tipo, departamento=d, unidad=u, usuario=f"c{i}@example.com", clave=f"s-{i}"
        )
        for i, (d, u) in enumerate([(soporte, None), (soporte, dev), (soporte, ops), (redes, None)])
    ]
    personas = {
        **usuarios,
        "jefe": hacer_usuario("jefe", REVELAR, jefe=True),
        "staff": hacer_usuario("staff", [*REVELAR, "ver_todas_credenciales"], is_staff=True),
        "sin_departamento": hacer_usuario("nadie", REVELAR, departamento=None),
    }
    for nombre, persona in personas.items():
        visibles = set(credenciales_visibles(persona).values_list("pk", flat=True))
        for i, c in enumerate(credenciales):
            antes = AccesoCredencial.objects.filter(accion="revelar").count()
            if c.pk in visibles:
                clave = services.credencial_revelar_visible(pk=c.pk, usuario=persona)
                assert clave == f"s-{i}", nombre
                assert AccesoCredencial.objects.filter(accion="revelar").count() == antes + 1
            else:
                with pytest.raises(Credencial.DoesNotExist):
                    services.credencial_revelar_visible(pk=c.pk, usuario=persona)
                assert AccesoCredencial.objects.filter(accion="revelar").count() == antes, nombre
    with pytest.raises(Credencial.DoesNotExist):
        services.credencial_revelar_visible(pk=999999, usuario=personas["staff"])


def test_it_writes_the_same_audit_row_as_the_other_services(usuarios, credencial):
    services.credencial_revelar_visible(
        pk=credencial.pk, usuario=usuarios["revelador"], ip="192.0.2.1", motivo=" soporte "
    )
    acceso = AccesoCredencial.objects.get(accion="revelar")
    creado = AccesoCredencial.objects.get(accion="crear")
    assert acceso.credencial_descripcion == creado.credencial_descripcion
    assert (acceso.usuario, acceso.credencial, acceso.ip, acceso.motivo) == (
        usuarios["revelador"],
        credencial,
        "192.0.2.1",
        "soporte",
    )
