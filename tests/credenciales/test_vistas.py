"""The vault's staff pages through Django's test client: the rights matrix over every page,
the secret never in a page but the reveal fragment, writes through the services (history and
audit rows), CSRF, and a constant number of queries whatever the number of rows."""

import pytest
from django.test import Client
from django.urls import reverse

from credenciales import services
from credenciales.models import AccesoCredencial, Credencial, HistorialClave
from sso.models import Usuario

from .conftest import SECRETO, con_permisos
from .test_api import _romper_auditoria

PERSONAS = ["anonimo", "lector", "revelador", "editor", "otro_departamento", "otra_unidad"]


@pytest.fixture
def personas(usuarios):
    # The editor heads the department and reads the audit log (`view_accesocredencial`).
    Usuario.objects.filter(pk=usuarios["editor"].pk).update(jefe=True)
    editor = con_permisos(usuarios["editor"], ["view_accesocredencial"])
    return {**usuarios, "editor": editor, "anonimo": None}


def _cliente(usuario, **kwargs) -> Client:
    cliente = Client(**kwargs)
    if usuario is not None:
        cliente.force_login(usuario)
    return cliente


def _datos(credencial, **extra):
    return {
        "tipo": credencial.tipo_id,
        "departamento": credencial.departamento_id,
        "unidad": credencial.unidad_id or "",
        "usuario": credencial.usuario,
        "clave": "",
        "url": "",
        "vence": "",
        "nota": credencial.nota,
        **extra,
    }


# page -> (method, expected status per persona in PERSONAS order; "login" = sign-in redirect)
MATRIZ = {
    "lista": ("get", ("login", 200, 200, 200, 200, 200)),
    "detalle": ("get", ("login", 200, 200, 200, 404, 404)),
    "historial": ("get", ("login", 200, 200, 200, 404, 404)),
    "accesos": ("get", ("login", 404, 404, 200, 404, 404)),
    "nueva": ("get", ("login", 403, 403, 200, 200, 200)),
    "editar": ("get", ("login", 403, 403, 200, 404, 404)),
    "borrar": ("get", ("login", 403, 403, 200, 404, 404)),
    "revelar": ("post", ("login", 404, 200, 200, 404, 404)),
    "copiar": ("post", ("login", 404, 204, 204, 404, 404)),
    "exportar": ("get", ("login", 403, 403, 200, 403, 403)),
    "exportar-post": ("post", ("login", 403, 403, 200, 403, 403)),
    "informe": ("get", ("login", 403, 403, 200, 403, 403)),
    "borrar-post": ("post", ("login", 403, 403, 302, 404, 404)),
}


def _url(pagina, credencial):
    nombre = pagina.removesuffix("-post")
    if nombre in ("lista", "nueva", "exportar", "informe"):
        return reverse(f"credenciales:{nombre}")
    return reverse(f"credenciales:{nombre}", args=[credencial.pk])


@pytest.mark.parametrize("pagina", list(MATRIZ))
@pytest.mark.parametrize("quien", PERSONAS)
def test_it_applies_the_rights_matrix_to_every_page(personas, credencial, pagina, quien):
    metodo, esperados = MATRIZ[pagina]
    esperado = esperados[PERSONAS.index(quien)]
    datos = {"credencial": credencial.pk} if pagina == "exportar-post" else {}
    respuesta = getattr(_cliente(personas[quien]), metodo)(_url(pagina, credencial), datos)
    if esperado == "login":
        assert respuesta.status_code == 302
        assert respuesta["Location"].startswith(reverse("sso:login"))
    else:
        assert respuesta.status_code == esperado
    contenido = b"".join(respuesta.streaming_content) if respuesta.streaming else respuesta.content
    if pagina != "revelar":
        assert SECRETO not in contenido.decode()
    borrada = not Credencial.objects.filter(pk=credencial.pk).exists()
    assert borrada is (pagina == "borrar-post" and esperado == 302)


def test_it_lists_only_what_the_user_sees_and_filters(personas, credencial, tipo, soporte, ops):
    services.credencial_crear(
        tipo=tipo, departamento=soporte, unidad=ops, usuario="ops@example.com", clave="Clave-Ops-1"
    )
    services.credencial_crear(
        tipo=tipo,
        departamento=soporte,
        unidad=None,
        usuario="general@example.com",
        clave="Clave-General-2",
        nota="impresora del pasillo",
    )
    lector = _cliente(personas["lector"])
    pagina = lector.get(reverse("credenciales:lista")).content.decode()
    assert "dev@example.com" in pagina and "general@example.com" in pagina
    assert "ops@example.com" not in pagina  # another unit
    assert SECRETO not in pagina and "Clave-General-2" not in pagina
    filtrada = lector.get(reverse("credenciales:lista"), {"q": "pasillo"}).content.decode()
    assert "general@example.com" in filtrada and "dev@example.com" not in filtrada
    # The text search never looks at secrets.
    por_clave = lector.get(reverse("credenciales:lista"), {"q": SECRETO[:8]}).content.decode()
    assert "dev@example.com" not in por_clave
    otra = _cliente(personas["otro_departamento"]).get(reverse("credenciales:lista"))
    assert "dev@example.com" not in otra.content.decode()


def test_it_reveals_with_an_audit_row_and_no_store(personas, credencial):
    cliente = _cliente(personas["revelador"])
    respuesta = cliente.post(
        reverse("credenciales:revelar", args=[credencial.pk]),
        {"motivo": "Soporte al cliente"},
        HTTP_HX_REQUEST="true",
    )
    assert respuesta.status_code == 200
    assert SECRETO in respuesta.content.decode()
    assert "no-store" in respuesta["Cache-Control"]
    assert 'data-ocultar-en="30"' in respuesta.content.decode()
    fila = AccesoCredencial.objects.get(accion="revelar")
    assert (fila.usuario, fila.credencial, fila.motivo) == (
        personas["revelador"],
        credencial,
        "Soporte al cliente",
    )
    # The detail page shows the button; never the secret.
    detalle = cliente.get(reverse("credenciales:detalle", args=[credencial.pk])).content.decode()
    assert reverse("credenciales:revelar", args=[credencial.pk]) in detalle
    assert SECRETO not in detalle


def test_it_hides_the_reveal_button_from_a_reader(personas, credencial):
    detalle = _cliente(personas["lector"]).get(
        reverse("credenciales:detalle", args=[credencial.pk])
    )
    assert reverse("credenciales:revelar", args=[credencial.pk]) not in detalle.content.decode()


def test_it_requires_a_reason_when_the_setting_says_so(personas, credencial, settings):
    settings.CREDENCIALES_MOTIVO_OBLIGATORIO = True
    cliente = _cliente(personas["revelador"])
    url = reverse("credenciales:revelar", args=[credencial.pk])
    respuesta = cliente.post(url, {"motivo": "  "})
    assert SECRETO not in respuesta.content.decode()
    assert 'role="alert"' in respuesta.content.decode()
    assert not AccesoCredencial.objects.filter(accion="revelar").exists()
    assert SECRETO in cliente.post(url, {"motivo": "Baja de un empleado"}).content.decode()


def test_it_reveals_nothing_when_the_audit_row_cannot_be_written(personas, credencial):
    _romper_auditoria()
    cliente = _cliente(personas["revelador"], raise_request_exception=False)
    respuesta = cliente.post(reverse("credenciales:revelar", args=[credencial.pk]))
    assert respuesta.status_code == 500
    assert SECRETO not in respuesta.content.decode()


def test_it_creates_with_a_write_only_secret(personas, tipo, soporte, dev):
    cliente = _cliente(personas["editor"])
    datos = {
        "tipo": tipo.pk,
        "departamento": soporte.pk,
        "unidad": dev.pk,
        "usuario": "nueva@example.com",
        "clave": "Gener4da!Larga#Clave",
        "url": "https://panel.example.com",
        "vence": "2030-01-31",
        "nota": "",
    }
    sin_clave = cliente.post(reverse("credenciales:nueva"), {**datos, "clave": ""})
    assert sin_clave.status_code == 200
    assert not Credencial.objects.filter(usuario="nueva@example.com").exists()
    respuesta = cliente.post(reverse("credenciales:nueva"), datos)
    nueva = Credencial.objects.get(usuario="nueva@example.com")
    assert respuesta["Location"] == reverse("credenciales:detalle", args=[nueva.pk])
    assert nueva.clave == "Gener4da!Larga#Clave"
    assert AccesoCredencial.objects.filter(credencial=nueva, accion="crear").exists()
    formulario = cliente.get(reverse("credenciales:editar", args=[nueva.pk])).content.decode()
    assert "Gener4da!Larga#Clave" not in formulario


def test_it_refuses_a_department_or_unit_outside_the_user(personas, tipo, redes, dev, soporte):
    cliente = _cliente(personas["otra_unidad"])  # may edit, works in the other unit
    base = {"tipo": tipo.pk, "usuario": "fuera@example.com", "clave": "x-y-z-1"}
    cliente.post(reverse("credenciales:nueva"), {**base, "departamento": redes.pk})
    cliente.post(
        reverse("credenciales:nueva"), {**base, "departamento": soporte.pk, "unidad": dev.pk}
    )
    assert not Credencial.objects.filter(usuario="fuera@example.com").exists()
    cliente.post(reverse("credenciales:nueva"), {**base, "departamento": soporte.pk})
    assert Credencial.objects.filter(usuario="fuera@example.com", unidad=None).exists()


def test_it_edits_keeping_the_secret_when_empty_and_its_history_otherwise(personas, credencial):
    cliente = _cliente(personas["editor"])
    url = reverse("credenciales:editar", args=[credencial.pk])
    assert cliente.post(url, _datos(credencial, nota="cambiada")).status_code == 302
    credencial.refresh_from_db()
    assert (credencial.nota, credencial.clave) == ("cambiada", SECRETO)
    assert not HistorialClave.objects.exists()
    cliente.post(url, _datos(credencial, clave="Otra-Clave-2"))
    credencial.refresh_from_db()
    assert credencial.clave == "Otra-Clave-2"
    assert [h.clave for h in HistorialClave.objects.all()] == [SECRETO]
    historial = cliente.get(reverse("credenciales:historial", args=[credencial.pk]))
    contenido = historial.content.decode()
    assert "editor" in contenido
    assert SECRETO not in contenido and "Otra-Clave-2" not in contenido
    accesos = cliente.get(reverse("credenciales:accesos", args=[credencial.pk])).content.decode()
    assert accesos.count("<tr>") == 1 + 3  # header, 2 edits, create


def test_it_deletes_with_an_audit_row_kept(personas, credencial):
    cliente = _cliente(personas["editor"])
    respuesta = cliente.post(reverse("credenciales:borrar", args=[credencial.pk]))
    assert respuesta["Location"] == reverse("credenciales:lista")
    assert not Credencial.objects.filter(pk=credencial.pk).exists()
    assert AccesoCredencial.objects.filter(accion="borrar", usuario=personas["editor"]).exists()


@pytest.mark.parametrize("pagina", ["revelar", "borrar-post", "nueva", "editar"])
def test_it_refuses_a_post_without_csrf(personas, credencial, pagina):
    cliente = _cliente(personas["editor"], enforce_csrf_checks=True)
    respuesta = cliente.post(_url(pagina, credencial), _datos(credencial, clave="Sin-Csrf-1"))
    assert respuesta.status_code == 403
    assert Credencial.objects.get(pk=credencial.pk).clave == SECRETO
    assert not AccesoCredencial.objects.exclude(accion="crear").exists()


def test_it_keeps_the_secret_out_of_error_reports(personas, tipo, soporte):
    import sys

    from django.core.signals import got_request_exception
    from django.views.debug import ExceptionReporter

    informes = []

    def al_fallar(sender, request, **kwargs):
        informes.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    _romper_auditoria()
    got_request_exception.connect(al_fallar)
    try:
        _cliente(personas["editor"], raise_request_exception=False).post(
            reverse("credenciales:nueva"),
            {
                "tipo": tipo.pk,
                "departamento": soporte.pk,
                "usuario": "informe@example.com",
                "clave": "Nunca-En-Informes-1",
            },
        )
    finally:
        got_request_exception.disconnect(al_fallar)
    assert informes and "audit down" in informes[0]
    assert "Nunca-En-Informes-1" not in informes[0]
    assert not Credencial.objects.filter(usuario="informe@example.com").exists()


def _muchas(tipo, soporte, dev, n):
    for i in range(n):
        services.credencial_crear(
            tipo=tipo, departamento=soporte, unidad=dev, usuario=f"c{i}@example.com", clave="x"
        )


@pytest.mark.parametrize(
    "pagina",
    ["lista", "detalle", "historial", "accesos", "editar", "nueva", "revelar", "copiar", "informe"],
)
def test_it_uses_the_same_queries_for_one_row_or_many(
    personas, credencial, tipo, soporte, dev, pagina, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cliente = _cliente(personas["editor"])
    metodo = "post" if pagina in ("revelar", "copiar") else "get"
    datos = {"usuario": personas["revelador"].pk} if pagina == "informe" else {}

    def contar():
        with CaptureQueriesContext(connection) as consultas:
            respuesta = getattr(cliente, metodo)(_url(pagina, credencial), datos)
            assert respuesta.status_code in (200, 204)
        return len(consultas)

    services.credencial_revelar(credencial=credencial, usuario=personas["revelador"])
    contar()  # warm caches (content types, permissions)
    una = contar()
    _muchas(tipo, soporte, dev, 12)
    for i in range(4):
        services.credencial_editar(credencial=credencial, clave=f"v{i}", por=personas["editor"])
    for c in Credencial.objects.all():
        services.credencial_revelar(credencial=c, usuario=personas["revelador"])
    with django_assert_num_queries(una):
        getattr(cliente, metodo)(_url(pagina, credencial), datos)


def test_it_exports_with_the_same_queries_for_one_row_or_many(
    personas, credencial, tipo, soporte, dev, django_assert_num_queries
):
    cliente = _cliente(personas["editor"])
    url = reverse("credenciales:exportar")

    def exportar():
        return b"".join(cliente.post(url).streaming_content)

    exportar()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as consultas:
        exportar()
    _muchas(tipo, soporte, dev, 12)
    with django_assert_num_queries(len(consultas)):
        exportar()


def test_it_records_a_copy_only_for_who_may_reveal(personas, credencial):
    url = reverse("credenciales:copiar", args=[credencial.pk])
    assert _cliente(personas["revelador"]).post(url).status_code == 204
    fila = AccesoCredencial.objects.get(accion="copiar")
    assert (fila.usuario, fila.credencial) == (personas["revelador"], credencial)
    assert _cliente(personas["revelador"]).get(url).status_code == 405
    assert _cliente(personas["lector"]).post(url).status_code == 404
    assert AccesoCredencial.objects.filter(accion="copiar").count() == 1


def test_it_exports_the_audit_log_filtered_and_records_it(personas, credencial, tipo, soporte):
    otra = services.credencial_crear(
        tipo=tipo, departamento=soporte, unidad=None, usuario="impresora", clave="Otra-9"
    )
    services.credencial_revelar(credencial=credencial, usuario=personas["revelador"], motivo="a")
    services.credencial_revelar(credencial=otra, usuario=personas["lector"], motivo="=SUM(1)")
    cliente = _cliente(personas["editor"])
    url = reverse("credenciales:exportar")

    def csv(datos):
        respuesta = cliente.post(url, datos)
        assert respuesta["Content-Type"].startswith("text/csv")
        assert "attachment" in respuesta["Content-Disposition"]
        return b"".join(respuesta.streaming_content).decode()

    todo = csv({})
    assert "dev@example.com" in todo and "'=SUM(1)" in todo  # no formula
    assert SECRETO not in todo and "Otra-9" not in todo
    de_una = csv({"credencial": credencial.pk})
    assert "impresora" not in de_una and ",revelar," in de_una
    de_persona = csv({"persona": personas["lector"].pk})
    assert de_persona.count("\n") == 2 and "'=SUM(1)" in de_persona  # header + one row
    assert csv({"desde": "2000-01-01", "hasta": "2000-01-02"}).count("\n") == 1
    assert AccesoCredencial.objects.filter(accion="exportar").count() == 4
    # A bad period is an error on the form, not an export.
    respuesta = cliente.post(url, {"desde": "2030-01-02", "hasta": "2030-01-01"})
    assert respuesta.status_code == 200 and not respuesta.streaming
    assert AccesoCredencial.objects.filter(accion="exportar").count() == 4
    # A credential of another department is a 404 and exports nothing.
    con_permisos(personas["otro_departamento"], ["view_accesocredencial"])
    ajena = _cliente(Usuario.objects.get(pk=personas["otro_departamento"].pk))
    assert ajena.post(url, {"credencial": credencial.pk}).status_code == 404
    assert AccesoCredencial.objects.filter(accion="exportar").count() == 4


def test_it_reports_what_a_person_revealed_and_could_reveal(personas, credencial, redes):
    services.credencial_revelar(credencial=credencial, usuario=personas["revelador"])
    services.credencial_revelar(credencial=credencial, usuario=personas["revelador"])
    cliente = _cliente(personas["editor"])
    url = reverse("credenciales:informe")
    vacio = cliente.get(url)
    assert vacio.status_code == 200
    pagina = cliente.get(url, {"usuario": personas["revelador"].pk}).content.decode()
    assert pagina.count("dev@example.com") == 3  # revealed, could reveal, to rotate
    assert "<td>2</td>" in pagina
    lector = cliente.get(url, {"usuario": personas["lector"].pk}).content.decode()
    assert lector.count("dev@example.com") == 0
    # Someone of another department is not a choice: the form refuses them.
    fuera = cliente.get(url, {"usuario": personas["otro_departamento"].pk}).content.decode()
    assert "otrodep" not in fuera and 'class="error"' in fuera


def test_it_reveals_nothing_from_a_tampered_ciphertext(personas, credencial):
    from .test_manipulacion import _alterar, _voltear_un_byte

    _alterar(credencial, _voltear_un_byte)
    cliente = _cliente(personas["revelador"])
    # Lists and the detail page never decrypt: they still show the credential.
    assert "dev@example.com" in cliente.get(reverse("credenciales:lista")).content.decode()
    respuesta = cliente.post(reverse("credenciales:revelar", args=[credencial.pk]))
    assert respuesta.status_code == 200
    assert 'role="alert"' in respuesta.content.decode()
    assert "data-valor" not in respuesta.content.decode()
    assert not AccesoCredencial.objects.filter(accion="revelar").exists()
