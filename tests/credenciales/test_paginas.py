"""Optional keyset pages of the Integra list (`limite`, `despues`)."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credenciales.models import Credencial

from .conftest import LECTURA, bearer

BASE = "/api/integra/credenciales"


@pytest.fixture
def muchas(tipo, soporte, redes, dev):
    """27 credentials over two departments, with accounts that tie."""
    filas = [
        Credencial(
            tipo=tipo,
            departamento=soporte if i % 3 else redes,
            unidad=None,
            usuario=f"cuenta{i % 5}@example.com",
            clave=f"s-{i}",
        )
        for i in range(27)
    ]
    return Credencial.objects.bulk_create(filas)


def _siguiente(response):
    link = response.headers.get("Link")
    if link is None:
        return None
    url = link.split(";")[0].strip("<>")
    return parse_qs(urlparse(url).query)


def test_it_walks_every_page_once_in_the_lists_order(api, hacer_usuario, muchas):
    staff = hacer_usuario("staff", [*LECTURA, "ver_todas_credenciales"], is_staff=True)
    h = bearer(staff)
    entera = [c["id"] for c in api.get(BASE, **h).json()["data"]]
    assert len(entera) == 27
    vistas, params = [], {"limite": ["5"]}
    while params is not None:
        response = api.get(BASE, {k: v[0] for k, v in params.items()}, **h)
        assert response.status_code == 200
        ids = [c["id"] for c in response.json()["data"]]
        assert len(ids) <= 5
        vistas += ids
        params = _siguiente(response)
    assert vistas == entera


def test_it_answers_a_page_in_the_same_queries_wherever_it_is(api, hacer_usuario, muchas):
    staff = hacer_usuario("staff", [*LECTURA, "ver_todas_credenciales"], is_staff=True)
    h = bearer(staff)
    api.get(BASE, {"limite": "5"}, **h)  # caches warm

    def consultas(params):
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(BASE, params, **h).status_code == 200
        return len(ctx.captured_queries)

    primera = consultas({"limite": "5"})
    profunda = consultas({"limite": "5", "despues": str(muchas[20].pk)})
    assert profunda == primera + 1  # the key of the cursor's row
    assert consultas({"limite": "20"}) == primera


@pytest.mark.parametrize(
    "params,campo",
    [
        ({"limite": "0"}, "limite"),
        ({"limite": "201"}, "limite"),
        ({"limite": "x"}, "limite"),
        ({"limite": "5", "despues": "999999"}, "despues"),
    ],
)
def test_it_refuses_bad_page_parameters(api, usuarios, credencial, params, campo):
    response = api.get(BASE, params, **bearer(usuarios["lector"]))
    assert response.status_code == 422
    assert response.json()["success"] is False and campo in response.json()["errors"]


def test_it_refuses_a_cursor_the_user_cannot_see(api, usuarios, credencial):
    response = api.get(
        BASE,
        {"limite": "5", "despues": str(credencial.pk)},
        **bearer(usuarios["otro_departamento"]),
    )
    assert response.status_code == 422
