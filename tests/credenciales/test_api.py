import json

import pytest
from django.core.management import call_command
from django.db import connection

from credenciales.models import AccesoCredencial, Credencial, HistorialClave, TipoCredencial
from sso.models import Bitacora

from .conftest import SECRETO, bearer

BASE = "/api/integra/credenciales"
BEARERS = ["user", "jwt", "oauth"]


def _call(api, method, path, headers, body=None):
    kwargs = {"format": "json"} if body is not None else {}
    return getattr(api, method)(path, body, **kwargs, **headers)


def _body(credencial, tipo, **extra):
    return {
        "usuario": "nuevo@example.com",
        "clave": "Otra-Clave-1",
        "idTipoCuenta": tipo.pk,
        "idDepartamento": credencial.departamento_id,
        "idUnidad": credencial.unidad_id,
        "nota": "x",
        **extra,
    }


# who -> expected status for: list, reveal, edit, delete
MATRIZ = {
    "lector": (200, 403, 403, 403),
    "revelador": (200, 200, 403, 403),
    "editor": (200, 200, 200, 200),
    "otro_departamento": (200, 404, 404, 404),
    "otra_unidad": (200, 404, 404, 404),
}


@pytest.mark.parametrize("kind", BEARERS)
@pytest.mark.parametrize("quien", list(MATRIZ))
def test_it_applies_the_rights_matrix(api, usuarios, credencial, tipo, quien, kind):
    usuario = usuarios[quien]
    esperado = MATRIZ[quien]
    headers = bearer(usuario, kind)
    listado = api.get(BASE, **headers)
    assert listado.status_code == esperado[0]
    ids = [c["id"] for c in listado.json()["data"]]
    assert (credencial.pk in ids) == (esperado[1] != 404)
    revelar = _call(api, "post", f"{BASE}/{credencial.pk}/revelar", headers, {})
    assert revelar.status_code == esperado[1], revelar.json()
    editar = _call(api, "put", f"{BASE}/{credencial.pk}", headers, _body(credencial, tipo))
    assert editar.status_code == esperado[2], editar.json()
    borrar = api.delete(f"{BASE}/{credencial.pk}", **headers)
    assert borrar.status_code == esperado[3]
    assert borrar.json()["success"] is (esperado[3] == 200)
    assert Credencial.objects.filter(pk=credencial.pk).exists() is (esperado[3] != 200)


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", BASE),
        ("post", BASE),
        ("put", f"{BASE}/1"),
        ("delete", f"{BASE}/1"),
        ("post", f"{BASE}/1/revelar"),
        ("get", f"{BASE}/tipos"),
        ("post", f"{BASE}/tipo"),
        ("put", f"{BASE}/tipo/1"),
        ("delete", f"{BASE}/tipo/1"),
    ],
)
def test_it_refuses_anonymous_callers_in_envelope_c(api, db, method, path):
    response = getattr(api, method)(path)
    assert response.status_code == 401
    assert response.json() == {"data": None, "message": "No autenticado.", "success": False}


def test_it_lists_with_the_seeds_fields_and_a_masked_secret(api, usuarios, credencial, dev):
    response = api.get(BASE, {"idUnidad": dev.pk}, **bearer(usuarios["lector"]))
    body = response.json()
    assert body["message"] == "Cuentas registradas" and body["success"] is True
    [fila] = body["data"]
    assert fila["clave"] == "********"
    assert fila["usuario"] == "dev@example.com"
    assert fila["unidadClave"] == "dev"
    assert fila["unidadNombreCompleto"] == "Soporte - Desarrollo"
    assert SECRETO not in response.content.decode()


def test_it_filters_by_type_department_unit_and_text(api, usuarios, credencial, tipo, soporte):
    otro = TipoCredencial.objects.create(nombre="VPN")
    h = bearer(usuarios["lector"])

    def ids(**q):
        return [c["id"] for c in api.get(BASE, q, **h).json()["data"]]

    assert ids(idTipoCuenta=tipo.pk) == [credencial.pk]
    assert ids(idTipoCuenta=otro.pk) == []
    assert ids(idDepartamento=soporte.pk) == [credencial.pk]
    assert ids(buscar="principal") == [credencial.pk]
    assert ids(buscar=SECRETO) == []
    response = api.get(BASE, {"idUnidad": "x"}, **h)
    assert response.status_code == 422 and response.json()["errors"] == {
        "idUnidad": ["Debe ser un entero."]
    }


def test_it_creates_a_credential_and_audits_it(api, usuarios, tipo, soporte, dev):
    response = api.post(
        BASE,
        {
            "usuario": "vpn@example.com",
            "clave": SECRETO,
            "idTipoCuenta": tipo.pk,
            "idDepartamento": soporte.pk,
            "idUnidad": dev.pk,
            "nota": "n",
        },
        format="json",
        **bearer(usuarios["editor"]),
    )
    assert response.json() == {"data": None, "message": "Cuenta registrada", "success": True}
    creada = Credencial.objects.get(usuario="vpn@example.com")
    assert creada.clave == SECRETO
    assert AccesoCredencial.objects.get(credencial=creada).accion == "crear"


def test_it_refuses_to_create_in_another_department_or_unit(api, usuarios, tipo, redes, ops):
    h = bearer(usuarios["editor"])
    base = {"usuario": "a@example.com", "clave": "x", "idTipoCuenta": tipo.pk}
    fuera = api.post(BASE, {**base, "idDepartamento": redes.pk}, format="json", **h)
    assert fuera.status_code == 403
    otra = api.post(
        BASE,
        {**base, "idDepartamento": ops.departamento_id, "idUnidad": ops.pk},
        format="json",
        **h,
    )
    assert otra.status_code == 403
    assert not Credencial.objects.exists()


def test_it_refuses_an_empty_account(api, usuarios, tipo, soporte):
    response = api.post(
        BASE,
        {"usuario": "  ", "clave": "x", "idTipoCuenta": tipo.pk, "idDepartamento": soporte.pk},
        format="json",
        **bearer(usuarios["editor"]),
    )
    assert response.status_code == 422
    assert response.json()["data"] is None and "usuario" in response.json()["errors"]


def test_it_reveals_with_an_audit_row(api, usuarios, credencial):
    usuario = usuarios["revelador"]
    response = api.post(
        f"{BASE}/{credencial.pk}/revelar",
        {"motivo": "Soporte al cliente"},
        format="json",
        REMOTE_ADDR="192.0.2.7",
        **bearer(usuario),
    )
    assert response.json() == {
        "data": {"id": credencial.pk, "clave": SECRETO},
        "message": "Clave revelada",
        "success": True,
    }
    assert response["Cache-Control"] == "no-store"
    acceso = AccesoCredencial.objects.get(accion="revelar")
    assert (acceso.usuario, acceso.credencial, acceso.ip, acceso.motivo) == (
        usuario,
        credencial,
        "192.0.2.7",
        "Soporte al cliente",
    )
    api.post(f"{BASE}/{credencial.pk}/revelar", **bearer(usuario))
    assert AccesoCredencial.objects.filter(accion="revelar").count() == 2


def test_it_requires_a_reason_when_configured(api, usuarios, credencial, settings):
    settings.CREDENCIALES_MOTIVO_OBLIGATORIO = True
    h = bearer(usuarios["revelador"])
    response = api.post(f"{BASE}/{credencial.pk}/revelar", {}, format="json", **h)
    assert response.status_code == 422
    assert SECRETO not in response.content.decode()
    assert not AccesoCredencial.objects.filter(accion="revelar").exists()
    ok = api.post(f"{BASE}/{credencial.pk}/revelar", {"motivo": "auditoría"}, format="json", **h)
    assert ok.json()["data"]["clave"] == SECRETO


def _romper_auditoria():
    tabla = AccesoCredencial._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit down'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER no_audit BEFORE INSERT ON {tabla} "
                "FOR EACH ROW EXECUTE FUNCTION no_audit()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER no_audit BEFORE INSERT ON {tabla} "
                "BEGIN SELECT RAISE(ABORT, 'audit down'); END"
            )


def test_it_reveals_nothing_when_the_audit_row_cannot_be_written(api, usuarios, credencial):
    api.raise_request_exception = False
    _romper_auditoria()
    response = api.post(f"{BASE}/{credencial.pk}/revelar", **bearer(usuarios["revelador"]))
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "message": "Error interno del servidor.",
        "success": False,
    }
    assert SECRETO not in response.content.decode()


def test_it_reveals_nothing_when_the_request_cannot_be_logged(api, usuarios, credencial):
    api.raise_request_exception = False
    tabla = Bitacora._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION no_bitacora() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'log down'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER no_bitacora BEFORE INSERT ON {tabla} "
                "FOR EACH ROW EXECUTE FUNCTION no_bitacora()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER no_bitacora BEFORE INSERT ON {tabla} "
                "BEGIN SELECT RAISE(ABORT, 'log down'); END"
            )
    response = api.post(f"{BASE}/{credencial.pk}/revelar", **bearer(usuarios["revelador"]))
    assert response.status_code == 500
    assert SECRETO not in response.content.decode()
    # The reveal's audit row went with the rolled-back request.
    assert not AccesoCredencial.objects.filter(accion="revelar").exists()
    # Other endpoints keep answering when their row cannot be written.
    lista = api.get(BASE, **bearer(usuarios["revelador"]))
    assert lista.status_code == 200


def test_it_keeps_the_history_on_edit(api, usuarios, credencial, tipo):
    h = bearer(usuarios["editor"])
    response = api.put(
        f"{BASE}/{credencial.pk}", _body(credencial, tipo, clave="Nueva-1"), format="json", **h
    )
    assert response.json() == {"data": None, "message": "Cuenta actualizada", "success": True}
    # the mask (or no clave) keeps the secret
    api.put(
        f"{BASE}/{credencial.pk}", _body(credencial, tipo, clave="********"), format="json", **h
    )
    credencial.refresh_from_db()
    assert credencial.clave == "Nueva-1"
    assert [h.clave for h in HistorialClave.objects.filter(credencial=credencial)] == [SECRETO]
    assert HistorialClave.objects.get().cambiado_por == usuarios["editor"]


def test_it_manages_types_and_refuses_deleting_one_in_use(api, usuarios, credencial, tipo):
    h = bearer(usuarios["editor"])
    creado = api.post(f"{BASE}/tipo", {"nombre": "Sistema CRM"}, format="json", **h)
    assert creado.json() == {"data": None, "message": "Tipo registrado", "success": True}
    nuevo = TipoCredencial.objects.get(nombre="Sistema CRM")
    editado = api.put(f"{BASE}/tipo/{nuevo.pk}", {"nombre": "Sistema CRM v2"}, format="json", **h)
    assert editado.json()["message"] == "Tipo actualizado"
    tipos = api.get(f"{BASE}/tipos", **h).json()
    assert tipos["message"] == "Tipos de cuentas"
    assert {"id": nuevo.pk, "nombre": "Sistema CRM v2"} in tipos["data"]
    en_uso = api.delete(f"{BASE}/tipo/{tipo.pk}", **h)
    assert en_uso.status_code == 409
    assert en_uso.json() == {
        "data": None,
        "message": "El tipo está en uso por 1 cuenta(s); no se eliminó.",
        "success": False,
        "errors": {"cuentas": ["1"]},
    }
    assert TipoCredencial.objects.filter(pk=tipo.pk).exists()
    borrado = api.delete(f"{BASE}/tipo/{nuevo.pk}", **h)
    assert borrado.json()["message"] == "Tipo eliminado"
    assert api.delete(f"{BASE}/tipo/{nuevo.pk}", **h).status_code == 404


def test_it_limits_oauth2_tokens_by_scope(api, usuarios, credencial):
    editor = usuarios["editor"]
    lectura = bearer(editor, "oauth", scope="read")
    assert api.get(BASE, **lectura).status_code == 200
    assert api.post(f"{BASE}/{credencial.pk}/revelar", **lectura).status_code == 403
    assert api.delete(f"{BASE}/{credencial.pk}", **lectura).status_code == 403
    escritura = bearer(editor, "oauth", scope="write")
    assert api.get(BASE, **escritura).status_code == 403
    assert api.post(f"{BASE}/{credencial.pk}/revelar", **escritura).status_code == 200


def test_it_answers_malformed_and_oversized_bodies_in_envelope_c(api, usuarios, settings):
    h = bearer(usuarios["editor"])
    malo = api.generic("POST", BASE, "{no json", content_type="application/json", **h)
    assert malo.status_code == 400
    assert malo.json() == {"data": None, "message": "JSON mal formado.", "success": False}
    settings.API_MAX_BODY_BYTES = 100
    grande = api.generic(
        "POST", BASE, json.dumps({"nota": "x" * 500}), content_type="application/json", **h
    )
    assert grande.status_code == 413
    assert grande.json()["success"] is False and grande.json()["data"] is None


def test_it_answers_unknown_integra_paths_in_envelope_c(api, db):
    response = api.get("/api/integra/nada")
    assert response.status_code == 404
    assert response.json() == {"data": None, "message": "Recurso no encontrado.", "success": False}


def test_it_keeps_secrets_out_of_the_bitacora(api, usuarios, credencial, tipo):
    h = bearer(usuarios["editor"])
    api.put(
        f"{BASE}/{credencial.pk}", _body(credencial, tipo, clave=SECRETO + "2"), format="json", **h
    )
    api.post(f"{BASE}/{credencial.pk}/revelar", **h)
    filas = list(Bitacora.objects.filter(endpoint__startswith="/api/integra/"))
    assert len(filas) == 2
    volcado = json.dumps([f.resumen for f in filas], ensure_ascii=False)
    assert "********" in volcado
    assert SECRETO not in volcado


def test_it_never_stores_or_dumps_the_clear_secret(postgres, credencial, tipo, capsys):
    from credenciales import services

    services.credencial_editar(credencial=credencial, clave="Segunda-Clave-9")
    with postgres.cursor() as cursor:
        cursor.execute("SELECT clave FROM credenciales_credencial")
        columnas = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT clave FROM credenciales_historialclave")
        columnas += [row[0] for row in cursor.fetchall()]
    assert len(columnas) == 2
    assert all(c.startswith("v1:") for c in columnas)
    assert not any(SECRETO in c or "Segunda-Clave-9" in c for c in columnas)
    call_command("dumpdata", "credenciales")
    volcado = capsys.readouterr().out
    assert '"clave": "v1:' in volcado
    assert SECRETO not in volcado and "Segunda-Clave-9" not in volcado
