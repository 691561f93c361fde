"""The account in a real browser: sign-in with an authenticator app, the password page at a
phone's width, sign-out from the account menu; each page audited with axe."""

import base64
import secrets

import pyotp
import pytest

from sso.models import DispositivoTOTP, Usuario

CLAVE = "una-clave-larga-y-buena-9"


@pytest.fixture
def ana_con_totp(transactional_db):
    from sso.models import Departamento

    soporte = Departamento.objects.create(nombre="Soporte")
    ana = Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password=CLAVE,
        first_name="Ana",
        last_name="Mora",
        departamento=soporte,
    )
    clave = secrets.token_bytes(20)
    DispositivoTOTP.objects.create(user=ana, name="app", confirmed=True, clave=clave.hex())
    return ana, pyotp.TOTP(base64.b32encode(clave).decode())


def test_it_signs_in_with_a_second_factor_and_signs_out(pagina, ana_con_totp, auditar, captura):
    _, totp = ana_con_totp
    pagina.goto("/cuenta/clave")
    assert "/oauth/login" in pagina.url
    auditar(pagina, contexto="(sign-in)")
    captura(pagina, "entrar")

    pagina.get_by_label("Correo o teléfono").fill("ana@example.com")
    pagina.get_by_label("Contraseña").fill(CLAVE)
    pagina.get_by_role("button", name="Iniciar sesión").click()
    pagina.get_by_label("Código").wait_for()
    auditar(pagina, contexto="(second factor)")
    captura(pagina, "entrar-2fa")

    pagina.get_by_label("Código").fill(totp.now())
    pagina.get_by_role("button", name="Verificar").click()
    pagina.wait_for_url("**/cuenta/clave")
    pagina.get_by_role("heading", name="Cambiar contraseña").wait_for()

    pagina.get_by_text("Ana Mora").click()
    pagina.get_by_role("button", name="Cerrar sesión").click()
    pagina.wait_for_url("**/oauth/login")
    assert pagina.get_by_text("Has cerrado la sesión.").is_visible()
    assert pagina.errores_consola == []


def test_it_refuses_a_wrong_code(pagina, ana_con_totp):
    _, totp = ana_con_totp
    pagina.goto("/oauth/login?next=/cuenta/clave")
    pagina.get_by_label("Correo o teléfono").fill("ana@example.com")
    pagina.get_by_label("Contraseña").fill(CLAVE)
    pagina.get_by_role("button", name="Iniciar sesión").click()
    malo = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    pagina.get_by_label("Código").fill(malo)
    pagina.get_by_role("button", name="Verificar").click()
    assert "/oauth/login/2fa" in pagina.url
    assert pagina.locator(".errores").is_visible()


def test_the_password_page_works_at_a_phone_width(pagina, entrar, ana_con_totp, auditar, captura):
    ana, _ = ana_con_totp
    pagina.set_viewport_size({"width": 360, "height": 740})
    entrar(pagina, ana)
    pagina.goto("/cuenta/clave")
    auditar(pagina, contexto="(password change, 360 px)")
    captura(pagina, "cuenta-clave-360")
    # Nothing wider than the screen.
    ancho = pagina.evaluate("document.documentElement.scrollWidth")
    assert ancho <= 360
    pagina.get_by_label("Contraseña antigua").fill(CLAVE)
    pagina.get_by_label("Contraseña nueva", exact=True).fill("otra-clave-muy-buena-7")
    pagina.get_by_label("Contraseña nueva (confirmación)").fill("otra-clave-muy-buena-7")
    pagina.get_by_role("button", name="Cambiar contraseña").click()
    pagina.get_by_text("Tu contraseña se cambió.").wait_for()
    ana.refresh_from_db()
    assert ana.check_password("otra-clave-muy-buena-7")
