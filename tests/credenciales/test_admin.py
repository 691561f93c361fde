from credenciales.models import AccesoCredencial, Credencial, HistorialClave
from sso.models import Usuario

from .conftest import SECRETO


def _admin(client):
    jefe = Usuario.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(jefe)
    return jefe


def test_it_never_shows_the_secret_and_keeps_it_when_left_empty(client, credencial):
    _admin(client)
    url = f"/admin/credenciales/credencial/{credencial.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert SECRETO not in page.content.decode()
    data = {
        "tipo": credencial.tipo_id,
        "departamento": credencial.departamento_id,
        "unidad": credencial.unidad_id,
        "usuario": "cambiado@example.com",
        "url": "",
        "vence": "",
        "nota": "",
        "nueva_clave": "",
    }
    assert client.post(url, data).status_code == 302
    credencial.refresh_from_db()
    assert (credencial.usuario, credencial.clave) == ("cambiado@example.com", SECRETO)
    client.post(url, {**data, "nueva_clave": "Nueva-2"})
    credencial.refresh_from_db()
    assert credencial.clave == "Nueva-2"
    assert [h.clave for h in HistorialClave.objects.all()] == [SECRETO]
    assert list(
        AccesoCredencial.objects.filter(credencial=credencial).values_list("accion", flat=True)
    ) == ["editar", "editar", "crear"]


def test_it_creates_through_the_service(client, tipo, soporte):
    jefe = _admin(client)
    response = client.post(
        "/admin/credenciales/credencial/add/",
        {"tipo": tipo.pk, "departamento": soporte.pk, "usuario": "a@example.com",
         "nueva_clave": SECRETO, "url": "", "vence": "", "nota": ""},
    )  # fmt: skip
    assert response.status_code == 302
    creada = Credencial.objects.get()
    assert (creada.clave, creada.creado_por) == (SECRETO, jefe)
