"""The vault in a real browser: filter the list, create a credential with the generator, reveal
it (shown, then hidden again), copy it, edit it, its history and audit log; every page audited
with axe and captured, the list also at a phone's width."""

import pytest
from django.contrib.auth.models import Permission

from credenciales import services
from credenciales.models import AccesoCredencial, Credencial, HistorialClave, TipoCredencial
from sso.models import Departamento, Unidad, Usuario

PERMISOS = [
    "view_credencial",
    "add_credencial",
    "change_credencial",
    "delete_credencial",
    "revelar_credencial",
    "view_accesocredencial",
    "view_tipocredencial",
]


@pytest.fixture
def boveda(transactional_db):
    soporte = Departamento.objects.create(nombre="Soporte")
    redes = Departamento.objects.create(nombre="Redes")
    dev = Unidad.objects.create(departamento=soporte, clave="dev", nombre="Desarrollo")
    servidor = TipoCredencial.objects.create(nombre="Servidor")
    correo = TipoCredencial.objects.create(nombre="Correo")
    eva = Usuario.objects.create_user(
        username="eva",
        email="eva@example.com",
        password="x",
        first_name="Eva",
        last_name="Ruiz",
        departamento=soporte,
        jefe=True,
    )
    eva.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="credenciales", codename__in=PERMISOS)
    )
    for usuario, tipo, unidad, nota in [
        ("root@web-01", servidor, None, "Servidor web principal"),
        ("backup@example.com", correo, dev, "Buzón de copias"),
        ("deploy@ci", servidor, dev, "Despliegues"),
    ]:
        services.credencial_crear(
            tipo=tipo,
            departamento=soporte,
            unidad=unidad,
            usuario=usuario,
            clave=f"Vieja-{usuario}",
            nota=nota,
            por=eva,
        )
    services.credencial_crear(
        tipo=servidor, departamento=redes, unidad=None, usuario="router@redes", clave="z-1"
    )
    return eva


def test_it_walks_through_the_vault(pagina, entrar, boveda, auditar, captura, settings):
    settings.CREDENCIALES_REVELAR_SEGUNDOS = 4
    pagina.context.grant_permissions(["clipboard-read", "clipboard-write"])
    entrar(pagina, boveda)

    # The list, filtered.
    pagina.goto("/credenciales/")
    pagina.get_by_role("heading", name="Credenciales").wait_for()
    assert pagina.get_by_role("link", name="root@web-01").is_visible()
    assert pagina.get_by_text("router@redes").count() == 0  # another department
    pagina.get_by_label("Buscar").fill("copias")
    pagina.get_by_role("button", name="Filtrar").click()
    pagina.wait_for_url("**/credenciales/?q=copias*")
    assert pagina.get_by_role("link", name="backup@example.com").is_visible()
    assert pagina.get_by_role("link", name="root@web-01").count() == 0
    auditar(pagina, contexto="(vault list)")
    captura(pagina, "credenciales-lista")

    # A new credential with a generated secret.
    pagina.get_by_role("link", name="Nueva credencial").click()
    pagina.get_by_role("heading", name="Nueva credencial").wait_for()
    pagina.get_by_label("Tipo").select_option(label="Servidor")
    pagina.get_by_label("Departamento").select_option(label="Soporte")
    pagina.get_by_label("Unidad").select_option(label="Soporte - Desarrollo")
    pagina.get_by_label("Cuenta", exact=True).fill("admin@panel")
    pagina.get_by_label("URL").fill("https://panel.example.com")
    pagina.get_by_label("Longitud").fill("24")
    pagina.get_by_role("button", name="Generar").click()
    clave = pagina.get_by_label("Clave", exact=True).input_value()
    assert len(clave) == 24
    assert pagina.locator("[data-fuerza-texto]").inner_text().startswith("Muy fuerte")
    assert pagina.evaluate("document.querySelector('meter').value") == 128
    pagina.get_by_role("button", name="Mostrar").click()
    assert pagina.get_by_label("Clave", exact=True).get_attribute("type") == "text"
    auditar(pagina, contexto="(new credential)")
    captura(pagina, "credenciales-nueva")
    pagina.get_by_role("button", name="Guardar").click()
    pagina.get_by_text("Credencial guardada.").wait_for()
    nueva = Credencial.objects.get(usuario="admin@panel")
    assert nueva.clave == clave
    assert clave not in pagina.content()

    # Reveal: the value appears, then hides itself.
    pagina.get_by_label("Motivo").fill("Mantenimiento")
    pagina.get_by_role("button", name="Revelar").click()
    valor = pagina.locator("[data-valor]")
    valor.wait_for()
    assert valor.inner_text() == clave
    assert AccesoCredencial.objects.filter(
        credencial=nueva, accion="revelar", motivo="Mantenimiento"
    ).exists()
    # Copy: to the clipboard, then recorded.
    with pagina.expect_response("**/copiar") as copia:
        pagina.get_by_role("button", name="Copiar").click()
    assert copia.value.status == 204
    pagina.get_by_text("Copiada.").wait_for()
    assert pagina.evaluate("navigator.clipboard.readText()") == clave
    assert AccesoCredencial.objects.filter(credencial=nueva, accion="copiar").exists()
    auditar(pagina, contexto="(credential, revealed)")
    captura(pagina, "credenciales-detalle")
    pagina.get_by_text("La clave se volvió a ocultar.").wait_for()
    assert pagina.locator("[data-valor]").count() == 0
    assert clave not in pagina.content()

    # Edit with a new secret: the old one goes to the history.
    pagina.get_by_role("link", name="Editar").click()
    pagina.get_by_role("heading", name="Editar credencial").wait_for()
    assert pagina.get_by_label("Clave", exact=True).input_value() == ""
    auditar(pagina, contexto="(edit credential)")
    captura(pagina, "credenciales-editar")
    pagina.get_by_label("Nota").fill("Panel de hosting")
    pagina.get_by_label("Clave", exact=True).fill("Otra-Clave-Nueva-2026")
    pagina.get_by_role("button", name="Guardar").click()
    pagina.get_by_text("Credencial guardada.").wait_for()
    assert HistorialClave.objects.filter(credencial=nueva).count() == 1

    pagina.get_by_role("link", name="Historial de la clave").click()
    pagina.get_by_role("heading", name="Historial de la clave").wait_for()
    assert pagina.get_by_role("cell", name="Eva Ruiz").count() == 1
    assert clave not in pagina.content()
    auditar(pagina, contexto="(secret history)")
    captura(pagina, "credenciales-historial")

    pagina.go_back()
    pagina.get_by_role("link", name="Registro de accesos").click()
    pagina.get_by_role("heading", name="Registro de accesos").wait_for()
    assert pagina.get_by_role("cell", name="Mantenimiento").count() == 1
    assert pagina.get_by_role("cell", name="copiar").count() == 1
    auditar(pagina, contexto="(audit log)")
    captura(pagina, "credenciales-accesos")
    with pagina.expect_download() as descarga:
        pagina.get_by_role("button", name="Exportar en CSV").click()
    with open(descarga.value.path(), encoding="utf-8") as archivo:
        csv = archivo.read()
    assert ",revelar," in csv and ",Mantenimiento" in csv
    assert clave not in csv and "Otra-Clave-Nueva-2026" not in csv
    assert AccesoCredencial.objects.filter(credencial=nueva, accion="exportar").exists()

    pagina.go_back()
    pagina.get_by_role("link", name="Eliminar").click()
    pagina.get_by_role("heading", name="Eliminar credencial").wait_for()
    auditar(pagina, contexto="(delete credential)")
    captura(pagina, "credenciales-borrar")
    pagina.get_by_role("button", name="Eliminar").click()
    pagina.get_by_text("Credencial eliminada.").wait_for()
    assert not Credencial.objects.filter(pk=nueva.pk).exists()

    # The audit log export page and the per-person report.
    pagina.get_by_role("link", name="Exportar el registro de accesos").click()
    pagina.get_by_role("heading", name="Exportar el registro de accesos").wait_for()
    auditar(pagina, contexto="(export)")
    captura(pagina, "credenciales-exportar")
    pagina.goto("/credenciales/")
    pagina.get_by_role("link", name="Informe por persona").click()
    pagina.get_by_label("Persona").select_option(label="Eva Ruiz")
    pagina.get_by_role("button", name="Mostrar el informe").click()
    pagina.get_by_role("heading", name="Lo que Eva Ruiz reveló").wait_for()
    assert pagina.get_by_role("link", name="deploy@ci").count() >= 1
    auditar(pagina, contexto="(report per person)")
    captura(pagina, "credenciales-informe")
    assert pagina.errores_consola == []


def test_the_vault_works_at_a_phone_width(pagina, entrar, boveda, auditar, captura):
    pagina.set_viewport_size({"width": 360, "height": 740})
    entrar(pagina, boveda)
    pagina.goto("/credenciales/")
    auditar(pagina, contexto="(vault list, 360 px)")
    captura(pagina, "credenciales-lista-360")
    assert pagina.evaluate("document.documentElement.scrollWidth") <= 360
    pagina.get_by_role("link", name="deploy@ci").click()
    pagina.get_by_role("button", name="Revelar").click()
    pagina.locator("[data-valor]").wait_for()
    auditar(pagina, contexto="(credential, 360 px)")
    captura(pagina, "credenciales-detalle-360")
    assert pagina.evaluate("document.documentElement.scrollWidth") <= 360
